//! Where a restore goes: the placement asked for over what RDS describes (the instance an
//! overwrite replaces, or the source in its own region), a restored Aurora cluster's
//! writer, and the checks that keep a restore out of the default VPC and off an existing
//! or missing target.

use lifeboat_domain::ResourceKind;
use lifeboat_domain::dr::plan::RestoreSettings;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{PreviewRequest, port};
use crate::{Deps, Problem};

/// Where the restored instance goes. Each field left out is taken from the instance the
/// restore replaces (an overwrite) or from the source database (a restore in its own
/// region), as RDS describes it at preview time.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct PlacementRequest {
    #[serde(default)]
    pub(super) subnet_group: Option<String>,
    #[serde(default)]
    pub(super) security_groups: Option<Vec<String>>,
    #[serde(default)]
    pub(super) parameter_group: Option<String>,
    #[serde(default)]
    pub(super) option_group: Option<String>,
    /// Aurora: the restored cluster's DB cluster parameter group.
    #[serde(default)]
    pub(super) cluster_parameter_group: Option<String>,
    /// Aurora: the class of the restored cluster's writer instance (default: as recorded
    /// with the snapshot, else the source writer's).
    #[serde(default)]
    pub(super) writer_class: Option<String>,
    /// RDS puts a restore without a DB subnet group into the default VPC, and one without
    /// security groups into the VPC's default security group: allowed only when asked.
    #[serde(default)]
    pub(super) allow_default_network: bool,
}

impl PlacementRequest {
    /// The request's fields over `base` (what RDS describes).
    pub(super) fn over(&self, base: Option<RestoreSettings>) -> RestoreSettings {
        let base = base.unwrap_or_default();
        RestoreSettings {
            subnet_group: self.subnet_group.clone().or(base.subnet_group),
            security_groups: self.security_groups.clone().unwrap_or(base.security_groups),
            parameter_group: self.parameter_group.clone().or(base.parameter_group),
            cluster_parameter_group: self.cluster_parameter_group.clone().or(base.cluster_parameter_group),
            option_group: self.option_group.clone().or(base.option_group),
        }
    }
}

/// What a restore with `settings` would leave to RDS's defaults, as (field, reason).
pub(super) fn default_network(settings: &RestoreSettings) -> Vec<(&'static str, &'static str)> {
    let mut missing = Vec::new();
    if settings.subnet_group.is_none() {
        missing.push((
            "placement.subnetGroup",
            "no DB subnet group is named or known from the source: RDS would restore into the default VPC; name one, or set allowDefaultNetwork",
        ));
    }
    if settings.security_groups.is_empty() {
        missing.push((
            "placement.securityGroups",
            "no VPC security group is named or known from the source: RDS would use the VPC's default security group; name them, or set allowDefaultNetwork",
        ));
    }
    missing
}

pub(super) fn placement_view(s: &RestoreSettings) -> Value {
    json!({
        "subnetGroup": s.subnet_group,
        "securityGroups": s.security_groups,
        "parameterGroup": s.parameter_group,
        "optionGroup": s.option_group,
        "publiclyAccessible": false,
    })
}

/// Where the restore goes and how it is configured: where the instance it replaces is, or
/// where its source is (in the source's own region), what the request names winning; a
/// restored Aurora cluster gets its writer. No default VPC or security group unless the
/// request allows it.
pub(super) async fn placement(
    deps: &Deps,
    r: &PreviewRequest,
    rp: &lifeboat_domain::RecoveryPoint,
    target: &str,
    cluster: bool,
) -> Result<(RestoreSettings, Option<lifeboat_domain::restore::WriterSpec>), Problem> {
    let described = if r.overwrite {
        Some(target)
    } else if rp.location == rp.resource.region {
        Some(rp.resource.id.as_str())
    } else {
        None
    };
    let (base, source_writer_class) = match (described, cluster) {
        (Some(id), true) => match deps
            .rds
            .cluster_placement(&rp.location, id)
            .await
            .map_err(|e| port(&e))?
        {
            Some((settings, class)) => (Some(settings), class),
            None => (None, None),
        },
        (Some(instance), false) => (
            deps.rds.placement(&rp.location, instance).await.map_err(|e| port(&e))?,
            None,
        ),
        (None, _) => (None, None),
    };
    let settings = r.placement.over(base);
    // A restored Aurora cluster serves only through an instance: it gets its writer.
    let writer = if cluster {
        let Some(class) = r
            .placement
            .writer_class
            .clone()
            .or_else(|| rp.writer_class().map(str::to_owned))
            .or(source_writer_class)
        else {
            return Err(Problem::bad_request("Invalid restore request").with_error(
                "placement.writerClass",
                "the class of the restored cluster's writer is not recorded with the snapshot and the source's writer cannot be read; name it",
            ));
        };
        Some(lifeboat_domain::restore::WriterSpec {
            instance: lifeboat_domain::dr::execution::writer_instance_name(target),
            class,
        })
    } else {
        None
    };
    if !r.placement.allow_default_network {
        let missing = default_network(&settings);
        if !missing.is_empty() {
            let mut problem = Problem::bad_request("Invalid restore request");
            for (field, why) in missing {
                problem = problem.with_error(field, why);
            }
            return Err(problem);
        }
    }
    Ok((settings, writer))
}

/// The target must exist for an overwrite, and must not for a restore into a new one.
pub(super) async fn check_target(
    deps: &Deps,
    region: &lifeboat_domain::Region,
    target: &str,
    cluster: bool,
    overwrite: bool,
) -> Result<(), Problem> {
    let exists = if cluster {
        deps.rds.cluster_status(region, target).await
    } else {
        deps.rds.instance_status(region, target).await
    }
    .map_err(|e| port(&e))?
    .is_some();
    match (overwrite, exists) {
        (true, false) => Err(Problem::not_found(format!(
            "instance {target} does not exist; restore without overwrite to create it"
        ))),
        (false, true) => Err(Problem::conflict(format!(
            "instance {target} exists; choose another target, or overwrite (admin)"
        ))),
        _ => Ok(()),
    }
}

/// Whether a point of `kind` restores into a cluster; only RDS instances and Aurora
/// clusters restore here, and only an instance can be overwritten.
pub(super) fn restores_into_cluster(kind: ResourceKind, overwrite: bool) -> Result<bool, Problem> {
    match kind {
        ResourceKind::RdsInstance => Ok(false),
        ResourceKind::AuroraCluster if !overwrite => Ok(true),
        ResourceKind::AuroraCluster => Err(Problem::bad_request("Invalid restore request").with_error(
            "overwrite",
            "an Aurora cluster is restored into a new cluster; an overwrite replaces an RDS DB instance",
        )),
        ResourceKind::S3Prefix | ResourceKind::DynamoDbTable | ResourceKind::ConfigBundle => {
            Err(Problem::bad_request("Invalid restore request").with_error(
                "recoveryPoint",
                "only RDS DB instance and Aurora cluster snapshots are restored through this API",
            ))
        }
    }
}

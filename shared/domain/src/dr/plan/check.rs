//! Checking a DR plan document: every field, every problem reported.

use super::{
    Action, DEFAULT_DATA_SAMPLE, DEFAULT_POLL, DEFAULT_SWITCH_TTL, DataDocument, DataSet, DbDocument, DbPlacement,
    DrPlan, DrPlanDocument, DrPlanProblems, Duration, GlobalMove, MAX_DATA_SAMPLE, MAX_SETTLE, MAX_TARGET, Network,
    NetworkDocument, PolicyName, Prechecks, PrechecksDocument, ProtectedDb, ProtectedTable, Quiesce, QuiesceDocument,
    Region, ResourceKind, RestoreSettings, Switch, SwitchDocument, TableDocument, Validation, ValidationDocument, fqdn,
    is_dns_name, is_lambda_arn, is_rds_identifier, parse_rds_arn, parse_table_arn,
};

fn duration(field: &str, raw: &str, problems: &mut Vec<String>) -> Option<Duration> {
    match humantime::parse_duration(raw) {
        Ok(d) if d.is_zero() => {
            problems.push(format!("{field}: must be more than zero"));
            None
        }
        Ok(d) => Some(d),
        Err(e) => {
            problems.push(format!("{field}: {raw:.40?} is not a duration ({e})"));
            None
        }
    }
}

fn region(field: &str, raw: &str, problems: &mut Vec<String>) -> Option<Region> {
    Region::parse(raw)
        .map_err(|e| problems.push(format!("{field}: {e}")))
        .ok()
}

/// The plan's DynamoDB tables: valid ARNs, each once, in the source or DR region.
fn parse_tables(
    doc: &DrPlanDocument,
    source_region: Option<&Region>,
    dr_region: Option<&Region>,
    problems: &mut Vec<String>,
) -> Vec<ProtectedTable> {
    let mut tables: Vec<ProtectedTable> = Vec::new();
    for (i, t) in doc.tables.iter().enumerate() {
        let at = format!("tables[{i}]");
        match parse_table_arn(&t.arn) {
            None => problems.push(format!(
                "{at}.arn: {:.100?} is not a DynamoDB table ARN (arn:aws:dynamodb:<region>:<account>:table/<name>)",
                t.arn
            )),
            Some(_) if tables.iter().any(|p| p.arn == t.arn) => {
                problems.push(format!("{at}.arn: {} is listed twice", t.arn));
            }
            Some((region, _)) if ![source_region, dr_region].contains(&Some(&region)) => {
                problems.push(format!(
                    "{at}.arn: {} is in {region}, neither source_region nor dr_region (its backups, and so its restore, stay in its region)",
                    t.arn
                ));
            }
            Some((region, name)) => tables.push(ProtectedTable {
                arn: t.arn.clone(),
                region,
                name: name.to_owned(),
            }),
        }
    }
    tables
}

/// The plan's S3 data sets: valid bucket and prefix, a sample in range, each once.
fn parse_data(doc: &DrPlanDocument, problems: &mut Vec<String>) -> Vec<DataSet> {
    let mut data = Vec::new();
    for (i, d) in doc.data.iter().enumerate() {
        let at = format!("data[{i}]");
        if let Err(e) = crate::s3::check_bucket(&d.bucket) {
            problems.push(format!("{at}.bucket: {e}"));
        }
        if let Err(e) = crate::s3::check_prefix(&d.prefix) {
            problems.push(format!("{at}.prefix: {e}"));
        }
        let sample = d.sample.unwrap_or(DEFAULT_DATA_SAMPLE);
        if !(1..=MAX_DATA_SAMPLE).contains(&sample) {
            problems.push(format!("{at}.sample: {sample} is outside 1 to {MAX_DATA_SAMPLE}"));
        }
        if data
            .iter()
            .any(|x: &DataSet| x.bucket == d.bucket && x.prefix == d.prefix)
        {
            problems.push(format!("{at}: {}/{} is listed twice", d.bucket, d.prefix));
        }
        data.push(DataSet {
            bucket: d.bucket.clone(),
            prefix: d.prefix.clone(),
            sample,
        });
    }
    data
}

/// The plan's databases, and the identifiers of those that parsed (a switch may name
/// them).
fn parse_databases(
    doc: &DrPlanDocument,
    source_region: Option<&Region>,
    problems: &mut Vec<String>,
) -> (Vec<ProtectedDb>, std::collections::HashSet<String>) {
    let mut databases = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, d) in doc.databases.iter().enumerate() {
        let at = format!("databases[{i}]");
        let (kind, id) = if let Some((region, kind, id)) = parse_rds_arn(&d.arn) {
            if source_region.is_some_and(|r| r.as_str() != region) {
                problems.push(format!("{at}.arn: {} is not in source_region", d.arn));
            }
            (Some(kind), id.to_owned())
        } else {
            problems.push(format!(
                "{at}.arn: {:.100?} is not an RDS DB instance or cluster ARN",
                d.arn
            ));
            (None, String::new())
        };
        if kind.is_some() && !seen.insert(id.clone()) {
            problems.push(format!("{at}.arn: {id} is listed twice"));
        }
        if let Some(r) = &d.read_replica {
            if !is_rds_identifier(r) {
                problems.push(format!("{at}.read_replica: {r:.70?} is not an RDS identifier"));
            }
            if kind == Some(ResourceKind::AuroraCluster) && d.global_cluster.is_none() {
                problems.push(format!("{at}.read_replica: for a cluster, only with global_cluster"));
            }
        }
        if let Some(g) = &d.global_cluster {
            if !is_rds_identifier(g) {
                problems.push(format!("{at}.global_cluster: {g:.70?} is not an RDS identifier"));
            }
            if kind == Some(ResourceKind::RdsInstance) {
                problems.push(format!("{at}.global_cluster: only for aurora-cluster"));
            }
            if d.read_replica.is_none() {
                problems.push(format!(
                    "{at}.global_cluster: name the DR-region secondary cluster in read_replica"
                ));
            }
        }
        let global_move = match d.global_move.as_deref() {
            None => GlobalMove::default(),
            Some(m) => {
                if d.global_cluster.is_none() {
                    problems.push(format!("{at}.global_move: only with global_cluster"));
                }
                GlobalMove::parse(m).unwrap_or_else(|| {
                    problems.push(format!("{at}.global_move: {m:.40?} is not outage or planned"));
                    GlobalMove::default()
                })
            }
        };
        if d.instance_class.as_deref().is_some_and(|c| !c.starts_with("db.")) {
            problems.push(format!("{at}.instance_class: expected a class like db.r6g.large"));
        }
        for (field, v) in [
            ("parameter_group", &d.parameter_group),
            ("cluster_parameter_group", &d.cluster_parameter_group),
            ("option_group", &d.option_group),
        ] {
            if v.as_deref().is_some_and(|g| g.is_empty() || g.len() > 255) {
                problems.push(format!("{at}.{field}: expected a group name"));
            }
        }
        if d.cluster_parameter_group.is_some() && kind == Some(ResourceKind::RdsInstance) {
            problems.push(format!("{at}.cluster_parameter_group: only for aurora-cluster"));
        }
        if d.option_group.is_some() && kind == Some(ResourceKind::AuroraCluster) {
            problems.push(format!("{at}.option_group: Aurora clusters take no option group"));
        }
        if d.step == Some(0) {
            problems.push(format!("{at}.step: steps count from 1"));
        }
        if let Some(kind) = kind {
            databases.push(ProtectedDb {
                arn: d.arn.clone(),
                kind,
                id,
                step: d.step.unwrap_or(1),
                read_replica: d.read_replica.clone(),
                global_cluster: d.global_cluster.clone(),
                instance_class: d.instance_class.clone(),
                parameter_group: d.parameter_group.clone(),
                cluster_parameter_group: d.cluster_parameter_group.clone(),
                option_group: d.option_group.clone(),
                global_move,
            });
        }
    }
    (databases, seen)
}

/// The databases' steps run 1, 2, 3… without gaps.
fn check_steps(databases: &[ProtectedDb], problems: &mut Vec<String>) {
    let mut steps: Vec<u32> = databases.iter().map(|d| d.step).collect();
    steps.sort_unstable();
    steps.dedup();
    if steps
        .iter()
        .enumerate()
        .any(|(i, s)| usize::try_from(*s).ok() != Some(i + 1))
    {
        problems.push(format!(
            "databases: steps must run 1, 2, 3… without gaps (found {steps:?})"
        ));
    }
}

/// Where restored databases land: named prechecks, valid security groups, and no default
/// VPC or security group unless the plan allows it.
fn check_placement(doc: &DrPlanDocument, net: &NetworkDocument, problems: &mut Vec<String>) {
    let p = &doc.prechecks;
    if p.kms_key_id.as_deref().is_some_and(str::is_empty) {
        problems.push("prechecks.kms_key_id: empty".into());
    }
    if p.subnet_group.as_deref().is_some_and(str::is_empty) {
        problems.push("prechecks.subnet_group: empty".into());
    }
    for (field, groups) in [
        ("network.security_groups", &net.security_groups),
        ("network.source_security_groups", &net.source_security_groups),
    ] {
        for g in groups {
            if !is_security_group_id(g) {
                problems.push(format!(
                    "{field}: {g:.40?} is not a VPC security group id like sg-0123456789abcdef0"
                ));
            }
        }
    }
    if net.source_subnet_group.as_deref().is_some_and(str::is_empty) {
        problems.push("network.source_subnet_group: empty".into());
    }
    // Restores in the DR region are placed by the plan alone (a VPC's groups do not
    // cross regions); restores in the source region fall back to the source's own.
    if !doc.databases.is_empty() && !net.allow_default_network {
        let mut missing = Vec::new();
        if p.subnet_group.is_none() {
            missing.push("prechecks.subnet_group (the DR-region DB subnet group)");
        }
        if net.security_groups.is_empty() {
            missing.push("network.security_groups (the DR-region VPC security groups)");
        }
        if !missing.is_empty() {
            problems.push(format!(
                "network: restored databases would be placed in the default VPC or security group; name {} (or set network.allow_default_network: true)",
                missing.join(" and ")
            ));
        }
    }
}

/// The endpoint switch: parameters and DNS records that name this plan's databases or
/// tables, a valid hosted zone and TTL, and the quiesce that stops writes.
fn parse_switch(
    s: &SwitchDocument,
    seen: &std::collections::HashSet<String>,
    tables: &[ProtectedTable],
    problems: &mut Vec<String>,
) -> Option<Switch> {
    let r = region("switch.region", &s.region, problems);
    if s.parameters.is_empty() && s.records.is_empty() {
        problems.push("switch: name at least one parameter or DNS record".into());
    }
    if !s.records.is_empty() {
        match &s.hosted_zone_id {
            None => problems.push("switch.hosted_zone_id: DNS records need their hosted zone".into()),
            Some(z) if z.is_empty() || z.len() > 32 || !z.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                problems.push(format!(
                    "switch.hosted_zone_id: {z:.40?} is not a hosted zone id like Z0123456789ABC"
                ));
            }
            Some(_) => {}
        }
    }
    for (name, db) in &s.records {
        if !is_dns_name(name) {
            problems.push(format!(
                "switch.records: {name:.80?} is not a DNS name like db.example.com."
            ));
        }
        if !seen.contains(db) {
            problems.push(format!(
                "switch.records[{name:.80}]: {db:.70?} is not a database of this plan"
            ));
        }
    }
    if let Some(ttl) = s.ttl
        && !(1..=86_400).contains(&ttl)
    {
        problems.push(format!("switch.ttl: {ttl} is outside 1 to 86400 seconds"));
    }
    for (name, db) in &s.parameters {
        if !name.starts_with('/') || name.len() > 1011 {
            problems.push(format!("switch.parameters: {name:.80?} is not a parameter path (/…)"));
        }
        if !seen.contains(db) && !tables.iter().any(|t| &t.name == db) {
            problems.push(format!(
                "switch.parameters[{name}]: {db:.70?} is not a database or table of this plan"
            ));
        }
    }
    let ttl = s.ttl.unwrap_or(DEFAULT_SWITCH_TTL);
    let quiesce = s.quiesce.as_ref().and_then(|q| parse_quiesce(q, s, ttl, problems));
    r.map(|region| Switch {
        region,
        parameters: s.parameters.clone(),
        hosted_zone_id: s.hosted_zone_id.clone(),
        records: s.records.iter().map(|(name, db)| (fqdn(name), db.clone())).collect(),
        ttl,
        quiesce,
    })
}

/// What stops writes before a failback's final snapshot, and how long it settles
/// (default: the switch's TTL).
fn parse_quiesce(q: &QuiesceDocument, s: &SwitchDocument, ttl: i64, problems: &mut Vec<String>) -> Option<Quiesce> {
    let before = problems.len();
    if q.parameters.is_empty() && q.records.is_empty() {
        problems.push("switch.quiesce: name at least one parameter or DNS record that stops writes".into());
    }
    for (name, value) in &q.parameters {
        if !name.starts_with('/') || name.len() > 1011 {
            problems.push(format!(
                "switch.quiesce.parameters: {name:.80?} is not a parameter path (/…)"
            ));
        }
        if value.trim().is_empty() || value.len() > 4096 {
            problems.push(format!(
                "switch.quiesce.parameters[{name:.80}]: the value must be 1 to 4096 characters"
            ));
        }
    }
    if !q.records.is_empty() && s.hosted_zone_id.is_none() {
        problems.push("switch.quiesce.records: DNS records need the switch's hosted_zone_id".into());
    }
    for (name, value) in &q.records {
        if !is_dns_name(name) {
            problems.push(format!(
                "switch.quiesce.records: {name:.80?} is not a DNS name like db.example.com."
            ));
        }
        if !is_dns_name(value) {
            problems.push(format!(
                "switch.quiesce.records[{name:.80}]: {value:.80?} is not a host name to point at"
            ));
        }
    }
    let settle = match q.settle.as_deref() {
        None => Duration::from_secs(u64::try_from(ttl).unwrap_or(0)),
        Some(raw) => match humantime::parse_duration(raw) {
            Ok(d) if d <= MAX_SETTLE => d,
            Ok(_) => {
                problems.push("switch.quiesce.settle: at most 1h".into());
                Duration::ZERO
            }
            Err(e) => {
                problems.push(format!("switch.quiesce.settle: {raw:.40?} is not a duration ({e})"));
                Duration::ZERO
            }
        },
    };
    (problems.len() == before).then(|| Quiesce {
        parameters: q.parameters.clone(),
        records: q.records.iter().map(|(name, v)| (fqdn(name), v.clone())).collect(),
        settle,
    })
}

impl DrPlan {
    pub fn from_json(json: &str) -> Result<Self, DrPlanProblems> {
        let doc: DrPlanDocument = serde_json::from_str(json).map_err(|e| DrPlanProblems {
            plan: String::new(),
            problems: vec![format!("not a DR plan document: {e}")],
        })?;
        Self::from_document(&doc)
    }

    /// Checks every field and reports every problem.
    pub fn from_document(doc: &DrPlanDocument) -> Result<Self, DrPlanProblems> {
        let mut problems = Vec::new();
        if let Err(e) = PolicyName::parse(&doc.name) {
            problems.push(format!("name: {e}"));
        }
        let source_region = region("source_region", &doc.source_region, &mut problems);
        let dr_region = region("dr_region", &doc.dr_region, &mut problems);
        if source_region.is_some() && source_region == dr_region {
            problems.push("dr_region: must differ from source_region".into());
        }
        let rto = duration("rto", &doc.rto, &mut problems);
        let rpo = duration("rpo", &doc.rpo, &mut problems);
        for (field, d) in [("rto", rto), ("rpo", rpo)] {
            if d.is_some_and(|d| d > MAX_TARGET) {
                problems.push(format!("{field}: at most 72h"));
            }
        }
        let restore_deadline = doc
            .restore_deadline
            .as_deref()
            .map(|d| duration("restore_deadline", d, &mut problems));
        let poll_interval = doc
            .poll_interval
            .as_deref()
            .map(|d| duration("poll_interval", d, &mut problems));
        if poll_interval.flatten().is_some_and(|d| d > Duration::from_hours(1)) {
            problems.push("poll_interval: at most 1h".into());
        }

        if doc.databases.is_empty() && doc.data.is_empty() && doc.tables.is_empty() {
            problems.push("databases: at least one database (or S3 data set, or DynamoDB table) is required".into());
        }
        let tables = parse_tables(doc, source_region.as_ref(), dr_region.as_ref(), &mut problems);
        let data = parse_data(doc, &mut problems);
        let (databases, seen) = parse_databases(doc, source_region.as_ref(), &mut problems);
        check_steps(&databases, &mut problems);

        let p = &doc.prechecks;
        let net = doc.network.clone().unwrap_or_default();
        check_placement(doc, &net, &mut problems);
        let validation = doc.validation.clone().unwrap_or_default();
        if let Some(arn) = &validation.lambda_arn
            && !is_lambda_arn(arn)
        {
            problems.push(format!(
                "validation.lambda_arn: {arn:.100?} is not a Lambda function ARN"
            ));
        }
        let switch = doc
            .switch
            .as_ref()
            .and_then(|s| parse_switch(s, &seen, &tables, &mut problems));
        let rehearsal_fault = doc.rehearsal_fault.as_deref().and_then(|f| {
            Action::parse(f).filter(|a| a.can_fail_in_rehearsal()).or_else(|| {
                problems.push(format!(
                    "rehearsal_fault: {f:.40?} is not a step that can fail ({})",
                    Action::REHEARSABLE.map(Action::as_str).join(", ")
                ));
                None
            })
        });
        let approval = doc
            .approval
            .as_ref()
            .and_then(|a| crate::approval::ApprovalRule::from_document(a, &mut problems));

        match (source_region, dr_region, rto, rpo, problems.is_empty()) {
            (Some(source_region), Some(dr_region), Some(rto), Some(rpo), true) => Ok(Self {
                name: doc.name.clone(),
                source_region,
                dr_region,
                databases,
                data,
                tables,
                rto,
                rpo,
                prechecks: Prechecks {
                    recovery_point: p.recovery_point,
                    kms_key_id: p.kms_key_id.clone(),
                    source_kms_key_id: p.source_kms_key_id.clone(),
                    subnet_group: p.subnet_group.clone(),
                    quotas: p.quotas,
                },
                validation: Validation {
                    expect_tags: validation.expect_tags,
                    lambda_arn: validation.lambda_arn,
                },
                switch,
                network: Network {
                    security_groups: net.security_groups,
                    source_subnet_group: net.source_subnet_group,
                    source_security_groups: net.source_security_groups,
                    allow_default_network: net.allow_default_network,
                },
                restore_deadline: restore_deadline.flatten().unwrap_or(rto),
                poll_interval: poll_interval.flatten().unwrap_or(DEFAULT_POLL),
                rehearsal_fault,
                approval,
            }),
            _ => Err(DrPlanProblems {
                plan: doc.name.chars().take(64).collect(),
                problems,
            }),
        }
    }

    pub fn to_document(&self) -> DrPlanDocument {
        let fmt = |d: Duration| humantime::format_duration(d).to_string();
        DrPlanDocument {
            name: self.name.clone(),
            source_region: self.source_region.to_string(),
            dr_region: self.dr_region.to_string(),
            databases: self
                .databases
                .iter()
                .map(|d| DbDocument {
                    arn: d.arn.clone(),
                    step: Some(d.step),
                    read_replica: d.read_replica.clone(),
                    global_cluster: d.global_cluster.clone(),
                    global_move: d.global_cluster.as_ref().map(|_| d.global_move.as_str().to_owned()),
                    instance_class: d.instance_class.clone(),
                    parameter_group: d.parameter_group.clone(),
                    cluster_parameter_group: d.cluster_parameter_group.clone(),
                    option_group: d.option_group.clone(),
                })
                .collect(),
            data: self
                .data
                .iter()
                .map(|d| DataDocument {
                    bucket: d.bucket.clone(),
                    prefix: d.prefix.clone(),
                    sample: Some(d.sample),
                })
                .collect(),
            tables: self
                .tables
                .iter()
                .map(|t| TableDocument { arn: t.arn.clone() })
                .collect(),
            rto: fmt(self.rto),
            rpo: fmt(self.rpo),
            prechecks: PrechecksDocument {
                recovery_point: self.prechecks.recovery_point,
                kms_key_id: self.prechecks.kms_key_id.clone(),
                source_kms_key_id: self.prechecks.source_kms_key_id.clone(),
                subnet_group: self.prechecks.subnet_group.clone(),
                quotas: self.prechecks.quotas,
            },
            validation: Some(ValidationDocument {
                expect_tags: self.validation.expect_tags.clone(),
                lambda_arn: self.validation.lambda_arn.clone(),
            }),
            switch: self.switch.as_ref().map(|s| SwitchDocument {
                region: s.region.to_string(),
                parameters: s.parameters.clone(),
                hosted_zone_id: s.hosted_zone_id.clone(),
                records: s.records.clone(),
                ttl: Some(s.ttl),
                quiesce: s.quiesce.as_ref().map(|q| QuiesceDocument {
                    parameters: q.parameters.clone(),
                    records: q.records.clone(),
                    settle: Some(fmt(q.settle)),
                }),
            }),
            network: Some(NetworkDocument {
                security_groups: self.network.security_groups.clone(),
                source_subnet_group: self.network.source_subnet_group.clone(),
                source_security_groups: self.network.source_security_groups.clone(),
                allow_default_network: self.network.allow_default_network,
            }),
            restore_deadline: Some(fmt(self.restore_deadline)),
            poll_interval: Some(fmt(self.poll_interval)),
            rehearsal_fault: self.rehearsal_fault.map(|a| a.as_str().to_owned()),
            approval: self.approval.as_ref().map(crate::approval::ApprovalRule::to_document),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.to_document()).unwrap_or_default()
    }

    pub fn database(&self, id: &str) -> Option<&ProtectedDb> {
        self.databases.iter().find(|d| d.id == id)
    }

    /// What a restore of `db` carries. In the DR region: the plan's subnet group, security
    /// groups and groups. In the source region (point-in-time, failback): the plan's
    /// `source_*` placement, else the source database's own (`source`, as RDS describes it),
    /// and the plan's groups, else the source's. Refused (naming what is missing) when the
    /// restore would land in the default VPC or security group and the plan does not allow
    /// it explicitly.
    pub fn restore_settings(
        &self,
        db: &ProtectedDb,
        in_dr_region: bool,
        source: Option<&DbPlacement>,
    ) -> Result<RestoreSettings, String> {
        let own = |plan: &Option<String>, described: Option<&Option<String>>| {
            plan.clone().or_else(|| described.cloned().flatten())
        };
        let settings = if in_dr_region {
            RestoreSettings {
                subnet_group: self.prechecks.subnet_group.clone(),
                security_groups: self.network.security_groups.clone(),
                parameter_group: db.parameter_group.clone(),
                cluster_parameter_group: db.cluster_parameter_group.clone(),
                option_group: db.option_group.clone(),
            }
        } else {
            RestoreSettings {
                subnet_group: own(&self.network.source_subnet_group, source.map(|s| &s.subnet_group)),
                security_groups: if self.network.source_security_groups.is_empty() {
                    source.map(|s| s.security_groups.clone()).unwrap_or_default()
                } else {
                    self.network.source_security_groups.clone()
                },
                parameter_group: own(&db.parameter_group, source.map(|s| &s.parameter_group)),
                cluster_parameter_group: own(&db.cluster_parameter_group, source.map(|s| &s.cluster_parameter_group)),
                option_group: own(&db.option_group, source.map(|s| &s.option_group)),
            }
        };
        if !self.network.allow_default_network {
            let (subnet, groups) = if in_dr_region {
                ("prechecks.subnet_group", "network.security_groups")
            } else {
                ("network.source_subnet_group", "network.source_security_groups")
            };
            let mut missing = Vec::new();
            if settings.subnet_group.is_none() {
                missing.push(format!("a DB subnet group ({subnet}, or the source's)"));
            }
            if settings.security_groups.is_empty() {
                missing.push(format!("VPC security groups ({groups}, or the source's)"));
            }
            if !missing.is_empty() {
                return Err(format!(
                    "{}: the restore would be placed in the default VPC or security group; missing {} (or set network.allow_default_network: true)",
                    db.id,
                    missing.join(" and ")
                ));
            }
        }
        Ok(settings)
    }
}

/// `sg-` and 8 or 17 hex digits.
fn is_security_group_id(s: &str) -> bool {
    s.strip_prefix("sg-")
        .is_some_and(|h| matches!(h.len(), 8 | 17) && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

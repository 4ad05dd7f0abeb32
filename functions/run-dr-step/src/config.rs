//! The function's configuration, read from its environment.

use lifeboat_domain::Region;
use lifeboat_domain::dr::SwitchScope;

/// Configuration: `CATALOG_TABLE_NAME`, `ALERTS_TOPIC_ARN`, `DR_REPORTS_BUCKET`, optional
/// `CONFIRM_KEY_SECRET_ID` (failover and failback need it) and `S3_FORCE_PATH_STYLE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrConfig {
    pub catalog_table: String,
    pub alerts_topic_arn: String,
    pub reports_bucket: String,
    pub confirm_key_secret_id: Option<String>,
    pub s3_force_path_style: bool,
    /// `BACKUP_REGION`: where `backup-objects` keeps S3 backups (plans with `data` read
    /// them back there); absent, such plans fail their pre-check.
    pub backup_region: Option<Region>,
    /// `DR_SWITCH_PARAMETER_PATH`, `DR_HOSTED_ZONE_IDS`: what a switch may write here.
    pub switch_scope: SwitchScope,
    /// `TABLE_EXPORT_BUCKET`: the buckets holding tables' copies (exports), `{region}`
    /// standing for the region; absent, tables have no copies to import.
    pub table_export_bucket: Option<lifeboat_domain::s3::ExportBuckets>,
}

impl DrConfig {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, lifeboat::config::ConfigError> {
        let mut problems = Vec::new();
        let mut required = |k: &str| {
            get(k).filter(|v| !v.trim().is_empty()).unwrap_or_else(|| {
                problems.push(format!("{k} is not set"));
                String::new()
            })
        };
        let catalog_table = required("CATALOG_TABLE_NAME");
        let alerts_topic_arn = required("ALERTS_TOPIC_ARN");
        let reports_bucket = required("DR_REPORTS_BUCKET");
        let switch_scope = SwitchScope::from_env(
            get("DR_SWITCH_PARAMETER_PATH").as_deref(),
            get("DR_HOSTED_ZONE_IDS").as_deref(),
        )
        .unwrap_or_else(|e| {
            problems.push(e);
            SwitchScope::default()
        });
        let backup_region = match get("BACKUP_REGION").filter(|v| !v.trim().is_empty()) {
            None => None,
            Some(r) => match Region::parse(&r) {
                Ok(r) => Some(r),
                Err(e) => {
                    problems.push(format!("BACKUP_REGION: {e}"));
                    None
                }
            },
        };
        let table_export_bucket = match get("TABLE_EXPORT_BUCKET").filter(|v| !v.trim().is_empty()) {
            None => None,
            Some(v) => match lifeboat_domain::s3::ExportBuckets::parse(&v) {
                Ok(b) => Some(b),
                Err(e) => {
                    problems.push(format!("TABLE_EXPORT_BUCKET: {e}"));
                    None
                }
            },
        };
        if !problems.is_empty() {
            return Err(lifeboat::config::ConfigError::new("DR", problems));
        }
        Ok(Self {
            table_export_bucket,
            catalog_table,
            alerts_topic_arn,
            reports_bucket,
            confirm_key_secret_id: get("CONFIRM_KEY_SECRET_ID").filter(|v| !v.trim().is_empty()),
            s3_force_path_style: get("S3_FORCE_PATH_STYLE").is_some_and(|v| v == "true"),
            backup_region,
            switch_scope,
        })
    }
}

//! Where an endpoint switch may write in this deployment. The deployed role of
//! `run-dr-step` may write only SSM parameters under one path (`DrSwitchParameterPath`)
//! and CNAME records of the named hosted zones (`DrHostedZoneIds`): a plan whose switch
//! reaches outside them is refused by the pre-check, before any change, instead of
//! failing at the switch itself.

use super::plan::Switch;

/// The parameters and hosted zones a switch may write. `None`: not limited (a deployment
/// that does not say, such as the local stack).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SwitchScope {
    /// SSM parameter path (`/dr/`) every switch parameter must lie under.
    pub parameter_path: Option<String>,
    /// Route 53 hosted zone ids whose records a switch may change (empty: none).
    pub hosted_zones: Option<Vec<String>>,
}

impl SwitchScope {
    /// From `DR_SWITCH_PARAMETER_PATH` and `DR_HOSTED_ZONE_IDS` (comma-separated; set but
    /// empty: no zone). A path must start and end with `/`.
    pub fn from_env(path: Option<&str>, zones: Option<&str>) -> Result<Self, String> {
        let parameter_path = match path.map(str::trim) {
            None | Some("") => None,
            Some(p) if p.len() > 1 && p.starts_with('/') && p.ends_with('/') => Some(p.to_owned()),
            Some(p) => {
                return Err(format!(
                    "DR_SWITCH_PARAMETER_PATH: {p:.80?} is not a parameter path like /dr/"
                ));
            }
        };
        let hosted_zones = zones.map(|z| {
            z.split(',')
                .map(str::trim)
                .filter(|z| !z.is_empty())
                .map(str::to_owned)
                .collect()
        });
        Ok(Self {
            parameter_path,
            hosted_zones,
        })
    }

    /// What of `switch` this deployment may not write, one problem each.
    pub fn problems(&self, switch: &Switch) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(path) = &self.parameter_path {
            for name in switch.parameters.keys().filter(|n| !n.starts_with(path.as_str())) {
                problems.push(format!(
                    "switch.parameters: {name:.80} is outside {path} (DrSwitchParameterPath), which is all the switch may write"
                ));
            }
        }
        if let Some(zones) = &self.hosted_zones
            && !switch.records.is_empty()
        {
            let zone = switch.hosted_zone_id.as_deref().unwrap_or_default();
            if !zones.iter().any(|z| z == zone) {
                let allowed = if zones.is_empty() {
                    "none".to_owned()
                } else {
                    zones.join(", ")
                };
                problems.push(format!(
                    "switch.hosted_zone_id: {zone:.40} is not one of the hosted zones the switch may change ({allowed}; DrHostedZoneIds)"
                ));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Region;
    use std::collections::BTreeMap;

    fn switch(parameters: &[&str], zone: Option<&str>, records: &[&str]) -> Switch {
        Switch {
            region: Region::parse("us-east-1").unwrap(),
            parameters: parameters
                .iter()
                .map(|p| ((*p).to_owned(), "orders".to_owned()))
                .collect(),
            hosted_zone_id: zone.map(str::to_owned),
            records: records
                .iter()
                .map(|r| ((*r).to_owned(), "orders".to_owned()))
                .collect::<BTreeMap<_, _>>(),
            ttl: 60,
            quiesce: None,
        }
    }

    #[test]
    fn an_unlimited_scope_allows_every_switch() {
        let s = switch(&["/orders/db/endpoint"], Some("Z1"), &["db.example.com."]);
        assert!(SwitchScope::default().problems(&s).is_empty());
        assert_eq!(SwitchScope::from_env(None, None).unwrap(), SwitchScope::default());
    }

    #[test]
    fn parameters_outside_the_path_and_records_outside_the_zones_are_each_named() {
        let scope = SwitchScope::from_env(Some("/dr/"), Some("Z1, Z2")).unwrap();
        assert!(
            scope
                .problems(&switch(&["/dr/orders/db/endpoint"], Some("Z2"), &["db.example.com."]))
                .is_empty()
        );
        let problems = scope.problems(&switch(
            &["/orders/db/endpoint", "/dr/ok", "/drx/near-miss"],
            Some("Z9"),
            &["db.example.com."],
        ));
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("/drx/near-miss") && problems[1].contains("/orders/db/endpoint"));
        assert!(problems[2].contains("Z9") && problems[2].contains("Z1, Z2"));
    }

    #[test]
    fn set_but_empty_zones_allow_no_dns_switch_but_parameters_still() {
        let scope = SwitchScope::from_env(Some("/dr/"), Some("")).unwrap();
        assert_eq!(scope.hosted_zones, Some(vec![]));
        assert!(scope.problems(&switch(&["/dr/a"], None, &[])).is_empty());
        let problems = scope.problems(&switch(&[], Some("Z1"), &["db.example.com."]));
        assert!(problems.len() == 1 && problems[0].contains("(none;"), "{problems:?}");
    }

    #[test]
    fn a_path_must_be_a_parameter_path() {
        for bad in ["dr/", "/dr", "/"] {
            assert!(SwitchScope::from_env(Some(bad), None).is_err(), "{bad}");
        }
    }
}

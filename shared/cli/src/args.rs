//! The command line: every admin API route as a subcommand.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Examples:
  lifeboat resources
  lifeboat points list --resource arn:aws:rds:us-east-1:123456789012:db:orders
  lifeboat backup now arn:aws:rds:us-east-1:123456789012:db:orders --reason \"before the migration\"
  lifeboat restore preview us-east-1/db/lb-gold-orders-20261207-1200 --target orders-restored
  lifeboat restore confirm <restore id> --token <token from the preview>
  lifeboat approvals list --state pending-approval
  lifeboat approvals approve <approval id>          (a second admin)
  lifeboat approvals token <approval id>            (the requester, once approved)
  lifeboat dr drill payments
  lifeboat policies check gold.json
  lifeboat --output json compliance | jq .

The API's URL: --api, else LIFEBOAT_API_URL, else output AdminApiUrl of the deployed
CloudFormation stack --stack (LIFEBOAT_STACK, default lifeboat) in --region (else AWS_REGION,
the profile's region, us-east-1), read with DescribeStacks from CloudFormation's endpoint
(AWS_ENDPOINT_URL_CLOUDFORMATION or AWS_ENDPOINT_URL if set: `make up`'s stack is found with
AWS_ENDPOINT_URL=http://127.0.0.1:5077). Requests are signed with SigV4 (for execute-api;
cloudformation for the lookup) with the standard AWS credential chain (environment, profile,
role).

Exit codes: 0 done; 1 the API answered another error (5xx, 400); 2 bad usage (also: no API
URL, the stack does not exist or has no AdminApiUrl output); 3 a checked file has problems;
4 refused (no role, bad signature: 401/403); 5 not found (404); 6 conflict (409, 412: already
running, stale write); 7 the API (or CloudFormation) could not be reached or no credentials
were found.";

#[derive(Debug, Parser)]
#[command(name = "lifeboat", version, about = "Operate Lifeboat: backups, restores, DR and policies", after_help = AFTER_HELP)]
pub struct Cli {
    /// The admin API's base URL, with its stage (e.g. https://abc123.execute-api.us-east-1.amazonaws.com/v1); without it, the stack's AdminApiUrl output.
    #[arg(long, env = "LIFEBOAT_API_URL", global = true)]
    pub api: Option<String>,
    /// The CloudFormation stack whose AdminApiUrl output is the API's URL when no --api is given.
    #[arg(long, env = "LIFEBOAT_STACK", default_value = "lifeboat", global = true)]
    pub stack: String,
    /// The region the API is signed for and the stack is read in (default: from the API's host name, else AWS_REGION, else us-east-1).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// How answers are printed.
    #[arg(long, short, value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Columns for lists, `key: value` lines for one item.
    Table,
    /// The API's JSON answer, as it came.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Protected resources and their newest recovery points.
    Resources,
    /// Recovery points.
    #[command(subcommand)]
    Points(Points),
    /// Backups taken on request.
    #[command(subcommand)]
    Backup(Backup),
    /// Restores of a database from a recovery point, in two steps (preview, then confirm).
    #[command(subcommand)]
    Restore(Restore),
    /// DR plans and executions.
    #[command(subcommand)]
    Dr(Dr),
    /// Backup policies.
    #[command(subcommand)]
    Policies(Policies),
    /// Requests waiting for a second person's approval (overwrite restores, failovers,
    /// failbacks, policy changes that weaken protection).
    #[command(subcommand)]
    Approvals(Approvals),
    /// One screen: compliance, open alerts, pending approvals, DR plans.
    Status,
    /// Prints a starting value for the stack's AdminRoles parameter (its default refuses
    /// everyone): the principals named, or yourself (STS GetCallerIdentity) as admin. An
    /// assumed role's sessions are named by their role.
    AdminRoles {
        /// Principal ARNs given the admin role.
        #[arg(long)]
        admin: Vec<String>,
        /// Principal ARNs given the operator role.
        #[arg(long)]
        operator: Vec<String>,
        /// Principal ARNs given the viewer role.
        #[arg(long)]
        viewer: Vec<String>,
    },
    /// A token for a destructive request invoked directly (admin role): restore-objects or
    /// backup-config with "overwrite": true. Prints the request with its token, ready to
    /// invoke the function with.
    Confirm {
        /// restore-objects or backup-config.
        function: String,
        /// The function's request (JSON).
        file: PathBuf,
    },
    /// What the stored policies would do now (the backup plan).
    Plan,
    /// RPO and verification compliance per resource and location.
    Compliance,
    /// Storage, cost and activity figures.
    Metrics,
    /// Recent alerts.
    Alerts,
    /// The audit trail of the admin API, newest first (admin role).
    Audit {
        /// At most this many records.
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Shell completions, printed to stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum Points {
    /// Recovery points, newest first.
    List {
        /// Only this resource's (its ARN).
        #[arg(long)]
        resource: Option<String>,
        /// Only those in this status (available, copied, failed, …).
        #[arg(long)]
        status: Option<String>,
    },
    /// One recovery point, by id (`<region>/<kind>/<name>`).
    Show { id: String },
}

#[derive(Debug, Subcommand)]
pub enum Backup {
    /// Snapshots these resources now, outside their schedule.
    Now {
        /// Resource ARNs.
        #[arg(required = true)]
        resources: Vec<String>,
        /// Why (recorded in the audit trail).
        #[arg(long)]
        reason: String,
        /// Kept like an emergency backup (outside the schedule's retention).
        #[arg(long)]
        emergency: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum Restore {
    /// Checks a restore and issues the token that confirms it; nothing is created yet.
    Preview {
        /// The recovery point to restore.
        recovery_point: String,
        /// The new instance's name (default: derived from the point).
        #[arg(long)]
        target: Option<String>,
        /// Replace the original instance (admin role; the original is kept, renamed).
        #[arg(long)]
        overwrite: bool,
        /// Into this DB subnet group (default: the original's).
        #[arg(long)]
        subnet_group: Option<String>,
        /// Allow the VPC's default network when neither the original nor the request names a
        /// subnet group (refused otherwise).
        #[arg(long)]
        allow_default_network: bool,
    },
    /// Starts a previewed restore.
    Confirm {
        id: String,
        #[arg(long)]
        token: String,
    },
    /// Where a restore stands.
    Status {
        id: String,
        /// Ask again every few seconds until the restore is done or failed.
        #[arg(long)]
        follow: bool,
    },
    /// Moves a restore on (the API's `advance`).
    Advance { id: String },
    /// Finishes an overwrite restore (admin role).
    Finish { id: String },
    /// Puts the original back after an overwrite restore (admin role).
    Rollback { id: String },
}

#[derive(Debug, Subcommand)]
pub enum Dr {
    /// DR plans.
    #[command(subcommand)]
    Plans(Plans),
    /// Rehearses a plan's recovery in the DR region; production is untouched.
    Drill { plan: String },
    /// Fails over to the DR region: the first call previews and prints a token, the second
    /// (with --token) starts it.
    Failover {
        plan: String,
        #[arg(long)]
        token: Option<String>,
    },
    /// Fails back to the primary region, previewed and confirmed like a failover.
    Failback {
        plan: String,
        #[arg(long)]
        token: Option<String>,
    },
    /// DR executions.
    #[command(subcommand)]
    Executions(Executions),
}

#[derive(Debug, Subcommand)]
pub enum Plans {
    /// Every stored DR plan.
    List,
    /// One stored DR plan, checked, with its entity tag.
    Show { name: String },
    /// Stores a DR plan from a JSON file (admin role); it is checked first, here and by the API.
    Put {
        name: String,
        file: PathBuf,
        /// Only over this version (the `etag` that `show` printed): a plan changed since is refused.
        #[arg(long)]
        if_match: Option<String>,
    },
    /// Checks a DR plan file offline, with the functions' own validation, listing every problem.
    Check { file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum Executions {
    /// A plan's DR executions, newest first.
    List { plan: String },
    /// One execution and its steps.
    Show {
        plan: String,
        execution: String,
        /// Ask again every few seconds until the execution ends.
        #[arg(long)]
        follow: bool,
    },
    /// An execution's report: steps, sources, measured RTO/RPO, who confirmed and approved.
    Report { plan: String, execution: String },
}

#[derive(Debug, Subcommand)]
pub enum Policies {
    /// One stored policy, with its entity tag.
    Get { name: String },
    /// A policy's replaced versions, newest first: who replaced each, when, and what it was.
    History { name: String },
    /// Stores a policy from a JSON file (admin role); it is checked first, here and by the API.
    Put {
        name: String,
        file: PathBuf,
        /// Only over this version (the `etag` that `get` printed): a policy changed since is refused.
        #[arg(long)]
        if_match: Option<String>,
        /// The token of an approved change (`lifeboat approvals token`), for a change that
        /// weakens a policy requiring approval.
        #[arg(long)]
        token: Option<String>,
    },
    /// Checks a policy file offline, with the functions' own validation, listing every problem.
    Check { file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum Approvals {
    /// Approval requests, newest first.
    List {
        /// Only those in this state: pending-approval, approved, denied, token-issued, expired.
        #[arg(long)]
        state: Option<String>,
    },
    /// One approval request: what it is for, who asked, who decided.
    Show { id: String },
    /// Approves a request (an admin the rule names, not the requester).
    Approve {
        id: String,
        /// Recorded with the decision.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Denies a request, saying why.
    Deny {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// The requester's confirmation token of an approved request (issued once).
    Token { id: String },
}

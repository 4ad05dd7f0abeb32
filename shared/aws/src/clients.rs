//! Service clients from the process's SDK configuration, each with the call counter
//! ([`crate::calls::CountCalls`]), so that run records count every call a function makes.

use aws_config::SdkConfig;

use crate::calls::CountCalls;

macro_rules! counted {
    ($(#[$doc:meta] $name:ident => $krate:ident),* $(,)?) => {$(
        #[$doc]
        pub fn $name(sdk: &SdkConfig) -> $krate::Client {
            $krate::Client::from_conf($krate::config::Builder::from(sdk).interceptor(CountCalls).build())
        }
    )*};
}

counted! {
    /// DynamoDB in the SDK configuration's region.
    dynamodb => aws_sdk_dynamodb,
    /// KMS in the SDK configuration's region.
    kms => aws_sdk_kms,
    /// Lambda in the SDK configuration's region.
    lambda => aws_sdk_lambda,
    /// Secrets Manager in the SDK configuration's region.
    secretsmanager => aws_sdk_secretsmanager,
    /// Step Functions in the SDK configuration's region.
    sfn => aws_sdk_sfn,
    /// SNS in the SDK configuration's region.
    sns => aws_sdk_sns,
    /// SSM in the SDK configuration's region.
    ssm => aws_sdk_ssm,
}

/// S3 in the SDK configuration's region, path-style addressing when `path_style`.
pub fn s3(sdk: &SdkConfig, path_style: bool) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(path_style)
            .interceptor(CountCalls)
            .build(),
    )
}

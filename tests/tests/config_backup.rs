//! Config and secrets backup on the local stack: SSM parameters (String, StringList,
//! SecureString) and Secrets Manager secrets (text and binary) gathered by path and prefix,
//! sealed with AES-256-GCM under a KMS data key bound to the bundle and run, stored, opened
//! again through KMS, and written back under another prefix.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use aws_sdk_ssm::types::ParameterType;
use lifeboat_aws::config_store::{AwsConfigStore, KmsDataKeys};
use lifeboat_domain::config_bundle::{Bundle, Envelope, ItemKind, encryption_context};
use lifeboat_ports::config::{ConfigStore, DataKeys};
use lifeboat_tests::{PRIMARY, TestEnv};

#[tokio::test]
async fn parameters_and_secrets_round_trip_through_a_sealed_bundle() {
    let env = TestEnv::start().await.unwrap();
    let sdk = &env.primary;
    let ssm = aws_sdk_ssm::Client::new(sdk);
    let sm = aws_sdk_secretsmanager::Client::new(sdk);
    let path = format!("/{}/orders/", env.prefix);
    for (name, value, kind) in [
        ("db/host", "orders.cluster.local", ParameterType::String),
        ("db/password", "correct-horse-battery", ParameterType::SecureString),
        ("features", "a,b,c", ParameterType::StringList),
    ] {
        ssm.put_parameter()
            .name(format!("{path}{name}"))
            .value(value)
            .r#type(kind)
            .send()
            .await
            .unwrap();
    }
    ssm.put_parameter()
        .name(format!("/{}/other/x", env.prefix))
        .value("not in the path")
        .r#type(ParameterType::String)
        .send()
        .await
        .unwrap();
    let prefix = format!("{}/orders/", env.prefix);
    sm.create_secret()
        .name(format!("{prefix}api-key"))
        .secret_string("sk_live_0123456789")
        .send()
        .await
        .unwrap();
    sm.create_secret()
        .name(format!("{prefix}tls-key"))
        .secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(vec![0u8, 159, 146, 150]))
        .send()
        .await
        .unwrap();
    sm.create_secret()
        .name(format!("{}/billing/api-key", env.prefix))
        .secret_string("not ours")
        .send()
        .await
        .unwrap();

    let store = AwsConfigStore::new(sdk);
    let mut items = store.parameters(&path).await.unwrap();
    assert_eq!(items.len(), 3, "{items:?}");
    items.extend(store.secrets(&prefix).await.unwrap());
    assert_eq!(items.len(), 5, "{items:?}");
    let password = items.iter().find(|i| i.name.ends_with("db/password")).unwrap();
    assert_eq!(password.value, "correct-horse-battery", "decrypted");
    assert_eq!(password.parameter_type.as_deref(), Some("SecureString"));
    let tls = items.iter().find(|i| i.name.ends_with("tls-key")).unwrap();
    assert!(tls.binary && tls.kind == ItemKind::Secret);

    // Sealed under a data key bound to this bundle and run.
    let key_id = env.create_kms_key(PRIMARY).await.unwrap();
    let keys = KmsDataKeys::new(sdk);
    let (bundle_name, run) = ("orders-config", "lb-orders-config-20261123-1800");
    let context = encryption_context(bundle_name, run);
    let (data_key, sealed_key) = keys.generate(&key_id, &context).await.unwrap();
    let nonce: [u8; 12] = uuid::Uuid::new_v4().as_bytes()[..12].try_into().unwrap();
    let sealed_content = Bundle { items: items.clone() };
    let envelope = Envelope::seal(
        bundle_name,
        run,
        chrono::Utc::now(),
        &key_id,
        &data_key,
        &sealed_key,
        &nonce,
        &sealed_content,
    )
    .unwrap();
    let stored = envelope.to_json();
    let text = String::from_utf8_lossy(&stored);
    for secret in ["correct-horse-battery", "sk_live_0123456789", "orders.cluster.local"] {
        assert!(!text.contains(secret), "plaintext {secret} in the stored bundle");
    }

    // Opened again: KMS gives the key back only with the same context.
    let read = Envelope::from_json(&stored).unwrap();
    assert!(
        keys.decrypt(
            &read.encrypted_data_key().unwrap(),
            &encryption_context("billing-config", run)
        )
        .await
        .is_err(),
        "a data key opens only under its own bundle and run"
    );
    let key = keys
        .decrypt(&read.encrypted_data_key().unwrap(), &context)
        .await
        .unwrap();
    let opened = read.open(&key).unwrap();
    assert_eq!(opened, sealed_content);

    // Written back under another prefix: the same values, SecureString kept.
    let target = format!("/{}/restored/", env.prefix);
    let secret_target = format!("{}/restored/", env.prefix);
    for item in &opened.items {
        let name = match item.kind {
            ItemKind::SsmParameter => item.name.replacen(&path, &target, 1),
            ItemKind::Secret => item.name.replacen(&prefix, &secret_target, 1),
        };
        store.put(item, &name).await.unwrap();
    }
    let mut back = store.parameters(&target).await.unwrap();
    back.extend(store.secrets(&secret_target).await.unwrap());
    assert_eq!(back.len(), 5, "{back:?}");
    for item in &opened.items {
        let restored = back
            .iter()
            .find(|b| b.name.rsplit('/').next() == item.name.rsplit('/').next() && b.kind == item.kind)
            .unwrap();
        assert_eq!(
            (&restored.value, restored.binary),
            (&item.value, item.binary),
            "{}",
            item.name
        );
        assert_eq!(restored.parameter_type, item.parameter_type, "{}", item.name);
    }
    // Writing back over an existing item makes a new version, not an error.
    store.put(&opened.items[0], &opened.items[0].name).await.unwrap();
}

/// The `backup-config` function end to end: backup (sealed, stored, read back, opened,
/// cataloged as verified), a replay that does nothing, verify, restore (refused over the
/// original without `overwrite`, a dry run, under a new prefix, and over the original), and
/// a stored bundle changed behind Lifeboat's back failing verification.
#[tokio::test]
async fn the_function_backs_up_verifies_and_restores_a_bundle() {
    use std::sync::Arc;

    use backup_config::{Deps, Rename};
    use lifeboat::ErrorType;
    use lifeboat_domain::ResourceKind;
    use lifeboat_ports::{Catalog, SystemClock};
    use lifeboat_tests::DR;
    use lifeboat_tests::s3::{backup_bucket, get, put, settings, store};

    let env = TestEnv::start().await.unwrap();
    let ssm = aws_sdk_ssm::Client::new(&env.primary);
    let sm = aws_sdk_secretsmanager::Client::new(&env.primary);
    let path = format!("/{}/shop/", env.prefix);
    let prefix = format!("{}/shop/", env.prefix);
    ssm.put_parameter()
        .name(format!("{path}db-password"))
        .value("original-password")
        .r#type(ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    ssm.put_parameter()
        .name(format!("{path}db-host"))
        .value("shop.db.local")
        .r#type(ParameterType::String)
        .send()
        .await
        .unwrap();
    sm.create_secret()
        .name(format!("{prefix}stripe"))
        .secret_string("sk_live_shop")
        .send()
        .await
        .unwrap();
    let bak = env.name("cfg-bak");
    backup_bucket(&env, &bak).await.unwrap();
    let deps = Deps {
        confirmations: lifeboat_tests::s3::confirmations(&env),
        catalog: Arc::new(env.catalog()),
        clock: Arc::new(SystemClock),
        config: Arc::new(AwsConfigStore::new(&env.primary)),
        keys: Arc::new(KmsDataKeys::new(&env.primary)),
        backup: store(&env, DR, lifeboat_ports::objects::CopyTuning::default()),
        settings: settings(&bak, &[]),
        kms_key_id: env.create_kms_key(PRIMARY).await.unwrap(),
    };
    let bundle = format!("{}-shop", env.prefix);
    let at = chrono::Utc::now();
    let backup = serde_json::json!({"action": "backup", "bundle": bundle, "policy": "gold",
        "parameters": [path], "secrets": [prefix], "scheduledTime": at});
    let invoke = |event: serde_json::Value| backup_config::handle(&deps, lifeboat_testkit::event(event));
    let done = invoke(backup.clone()).await.unwrap();
    assert!(done.verified && !done.replay, "{done:?}");
    assert_eq!(done.items.len(), 3, "{done:?}");
    let report = serde_json::to_string(&done).unwrap();
    assert!(
        !report.contains("original-password") && !report.contains("sk_live_shop"),
        "{report}"
    );
    let point = env.catalog().get(&done.recovery_point).await.unwrap().unwrap();
    assert_eq!(point.resource.kind, ResourceKind::ConfigBundle);
    assert!(point.verified_at.is_some());
    let key = done.object_key.clone().unwrap();
    let raw = get(&env, DR, &bak, &key, None).await.unwrap();
    let raw = String::from_utf8_lossy(&raw);
    assert!(!raw.contains("original-password") && !raw.contains("sk_live_shop"));
    assert!(raw.contains("db-password"), "item names are readable");

    // The same run again: nothing done.
    let again = invoke(backup).await.unwrap();
    assert!(again.replay, "{again:?}");

    let verified = invoke(serde_json::json!({"action": "verify", "bundle": bundle}))
        .await
        .unwrap();
    assert_eq!(verified.run, done.run);

    // Over the original without `overwrite`: refused, nothing written.
    let asked = |names: Vec<String>, rename: Option<Rename>, overwrite: bool, dry_run: bool| {
        serde_json::json!({"action": "restore", "bundle": bundle, "names": names, "overwrite": overwrite,
            "dryRun": dry_run, "rename": rename.map(|r| serde_json::json!({"from": r.from, "to": r.to}))})
    };
    let restore = |names: Vec<String>, rename: Option<Rename>, overwrite: bool, dry_run: bool| {
        invoke(asked(names, rename, overwrite, dry_run))
    };
    let refused = restore(vec![], None, false, false).await.unwrap_err();
    assert_eq!(refused.kind, ErrorType::Invalid, "{refused}");

    // A dry run of the parameters under a new prefix lists the targets and writes nothing
    // (the secret keeps its name under this rename, so it would need overwrite).
    let to = format!("/{}/shop-restored/", env.prefix);
    let rename = || {
        Some(Rename {
            from: path.clone(),
            to: to.clone(),
        })
    };
    let params: Vec<String> = vec![format!("{path}db-password"), format!("{path}db-host")];
    let preview = restore(params.clone(), rename(), false, true).await.unwrap();
    assert!(preview.dry_run);
    assert!(
        preview
            .items
            .iter()
            .any(|i| i.target.as_deref() == Some(&format!("{to}db-password")))
    );
    assert!(
        AwsConfigStore::new(&env.primary)
            .parameters(&to)
            .await
            .unwrap()
            .is_empty()
    );

    // Under the new prefix: the parameters (the secret keeps its name, so it needs overwrite).
    restore(params.clone(), rename(), false, false).await.unwrap();
    let restored = AwsConfigStore::new(&env.primary).parameters(&to).await.unwrap();
    let password = restored.iter().find(|i| i.name.ends_with("db-password")).unwrap();
    assert_eq!(password.value, "original-password");
    assert_eq!(password.parameter_type.as_deref(), Some("SecureString"));

    // Over the original, after it changed: the old value is back, the changed one stays in
    // the parameter's history.
    ssm.put_parameter()
        .name(format!("{path}db-password"))
        .value("changed-by-mistake")
        .r#type(ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    // Over the items themselves needs the admin API's token for this exact request: refused
    // without it, nothing written.
    let over = asked(vec![format!("{path}db-password")], None, true, false);
    let refused = invoke(over.clone()).await.unwrap_err();
    assert_eq!(refused.kind, ErrorType::Invalid, "{refused}");
    assert!(refused.message.contains("POST /confirmations"), "{refused}");
    let (status, _, issued) = lifeboat_tests::api::call(
        &env,
        &lifeboat_tests::api::request(
            "POST",
            "/confirmations",
            "arn:aws:sts::123456789012:assumed-role/LifeboatAdmin/alice",
            Some(&serde_json::json!({"function": "backup-config", "request": over})),
            &format!("{}-confirm", env.prefix),
        ),
    )
    .await;
    assert_eq!(status, 201, "{issued}");
    let confirmed = issued["invoke"].clone();
    invoke(confirmed.clone()).await.unwrap();
    // Single use: the same request again is refused.
    let again = invoke(confirmed).await.unwrap_err();
    assert!(again.message.contains("already used"), "{again}");
    let now = ssm
        .get_parameter()
        .name(format!("{path}db-password"))
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    assert_eq!(now.parameter().unwrap().value(), Some("original-password"));
    let history = ssm
        .get_parameter_history()
        .name(format!("{path}db-password"))
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    assert!(
        history
            .parameters()
            .iter()
            .any(|p| p.value() == Some("changed-by-mistake")),
        "the overwritten value stays in the history"
    );

    // A stored bundle replaced behind Lifeboat's back fails verification.
    put(&env, DR, &bak, &key, b"{\"format\": \"not ours\"}").await.unwrap();
    let bad = invoke(serde_json::json!({"action": "verify", "bundle": bundle}))
        .await
        .unwrap_err();
    assert_eq!(bad.kind, ErrorType::Conflict, "{bad}");
    assert!(bad.message.contains("SHA-256"), "{bad}");
}

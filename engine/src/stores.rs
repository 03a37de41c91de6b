//! Object stores: tables on S3 (`s3://`, `s3a://`), Google Cloud Storage
//! (`gs://`), Azure (`az://`, `abfs://`, `abfss://`) and HTTP(S), made on
//! demand, one per bucket, the first time a URL names it.
//!
//! Each store is configured the way the store's own tools are: from the
//! standard environment variables (`AWS_ACCESS_KEY_ID`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`, `GOOGLE_APPLICATION_CREDENTIALS`,
//! `AZURE_STORAGE_ACCOUNT_NAME`, ...), then from `--conf
//! fairway.store.<store>.<key>=<value>` settings, which win. `<key>` is
//! any configuration key that `object_store`'s builder for that store
//! accepts (`region`, `endpoint`, `access_key_id`, `allow_http`, ...).
//!
//! Secrets (keys, tokens, passwords) never leave this module: the
//! registry's `Debug` lists bucket URLs only, and [`StoreOptions::shown`]
//! masks them.
//!
//! A store without any credentials is refused with an error that says how
//! to give them, rather than left to ask a cloud metadata service (which,
//! off the cloud, waits for minutes): `fairway.store.<store>.instance_metadata
//! = true` allows that on a cloud machine, `skip_signature = true` reads
//! public buckets anonymously.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreRegistry;
use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::http::HttpBuilder;
use object_store::local::LocalFileSystem;
use object_store::{ClientConfigKey, ClientOptions, RetryConfig};
use url::Url;

/// The prefix of the store settings.
pub const STORE_PREFIX: &str = "fairway.store.";

/// The stores that settings can name, and the URL schemes of each.
const FAMILIES: &[(&str, &[&str])] = &[
    ("s3", &["s3", "s3a"]),
    ("gcs", &["gs", "gcs"]),
    ("azure", &["az", "azure", "abfs", "abfss", "adl"]),
    ("http", &["http", "https"]),
];

/// fairway's own store key (not `object_store`'s): whether a store without
/// credentials may ask the cloud's instance metadata service for them.
const INSTANCE_METADATA: &str = "instance_metadata";

/// The URL schemes fairway reads and writes through an object store.
pub fn is_remote_scheme(scheme: &str) -> bool {
    family_of(scheme).is_some()
}

fn family_of(scheme: &str) -> Option<&'static str> {
    let scheme = scheme.to_ascii_lowercase();
    FAMILIES
        .iter()
        .find(|(_, schemes)| schemes.contains(&scheme.as_str()))
        .map(|(family, _)| *family)
}

/// Whether `location` is an object store URL (`s3://...`, `https://...`)
/// rather than a local path.
pub fn is_remote(location: &str) -> bool {
    location
        .split_once("://")
        .is_some_and(|(scheme, _)| is_remote_scheme(scheme))
}

/// Whether a store key names a secret, whose value is never shown.
fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "secret",
        "token",
        "password",
        "access_key",
        "account_key",
        "master_key",
        "sas",
        "service_account_key",
    ]
    .iter()
    .any(|word| key.contains(word))
        && key != "access_key_id"
        && key != "aws_access_key_id"
}

/// The `fairway.store.*` settings of a session, in the order given.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// (store, key, value), e.g. `("s3", "region", "eu-west-1")`.
    entries: Vec<(String, String, String)>,
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.shown()).finish()
    }
}

impl StoreOptions {
    /// Applies `fairway.store.<store>.<key>` = `value`, checking that the
    /// store is known and that its builder accepts the key.
    pub fn set(&mut self, full_key: &str, value: &str) -> std::result::Result<(), String> {
        let rest = full_key
            .strip_prefix(STORE_PREFIX)
            .ok_or_else(|| format!("store settings start with '{STORE_PREFIX}'"))?;
        let (family, key) = rest.split_once('.').ok_or_else(|| {
            "expected fairway.store.<store>.<key>, e.g. fairway.store.s3.region".to_string()
        })?;
        let family = family.to_ascii_lowercase();
        let key = key.to_ascii_lowercase();
        if !FAMILIES.iter().any(|(f, _)| *f == family) {
            return Err(format!(
                "unknown store '{family}'; known: {}",
                FAMILIES
                    .iter()
                    .map(|(f, _)| *f)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let known = key == INSTANCE_METADATA
            || match family.as_str() {
                "s3" => key.parse::<AmazonS3ConfigKey>().is_ok(),
                "gcs" => key.parse::<GoogleConfigKey>().is_ok(),
                "azure" => key.parse::<AzureConfigKey>().is_ok(),
                _ => key.parse::<ClientConfigKey>().is_ok(),
            };
        if !known {
            return Err(format!(
                "'{key}' is not a configuration key of the {family} store (see the README, \
                 \"Reading from object stores\")"
            ));
        }
        if key == INSTANCE_METADATA
            && !matches!(value.trim().to_ascii_lowercase().as_str(), "true" | "false")
        {
            return Err(format!("expected true or false, got '{}'", value.trim()));
        }
        let value = value.trim().to_string();
        match self
            .entries
            .iter_mut()
            .find(|(f, k, _)| *f == family && *k == key)
        {
            Some(entry) => entry.2 = value,
            None => self.entries.push((family, key, value)),
        }
        Ok(())
    }

    /// The settings as `(key, value)`, secrets masked.
    pub fn shown(&self) -> Vec<(String, String)> {
        self.entries
            .iter()
            .map(|(family, key, value)| {
                let shown = if is_secret(key) {
                    "***".to_string()
                } else {
                    value.clone()
                };
                (format!("{STORE_PREFIX}{family}.{key}"), shown)
            })
            .collect()
    }

    fn of<'a>(&'a self, family: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.entries
            .iter()
            .filter(move |(f, k, _)| f == family && k != INSTANCE_METADATA)
            .map(|(_, k, v)| (k.as_str(), v.as_str()))
    }

    fn instance_metadata(&self, family: &str) -> bool {
        self.entries.iter().any(|(f, k, v)| {
            f == family && k == INSTANCE_METADATA && v.eq_ignore_ascii_case("true")
        })
    }
}

/// How long a store waits: a refused or silent endpoint fails a statement
/// in seconds, not after object_store's default three minutes of retries.
fn retry() -> RetryConfig {
    RetryConfig {
        max_retries: 2,
        retry_timeout: Duration::from_secs(15),
        ..RetryConfig::default()
    }
}

fn client_defaults() -> ClientOptions {
    ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(120))
}

/// The object stores of one session: the local file system, and one store
/// per bucket (or HTTP host) made on first use.
pub struct StoreRegistry {
    options: StoreOptions,
    stores: RwLock<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl std::fmt::Debug for StoreRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut keys: Vec<String> = self
            .stores
            .read()
            .expect("store registry lock")
            .keys()
            .cloned()
            .collect();
        keys.sort();
        f.debug_struct("StoreRegistry")
            .field("stores", &keys)
            .finish_non_exhaustive()
    }
}

/// The registry key of a URL: scheme and authority, without user info.
fn url_key(url: &Url) -> String {
    format!(
        "{}://{}",
        url.scheme(),
        &url[url::Position::BeforeHost..url::Position::AfterPort]
    )
}

/// An error about store `url`: a configuration problem, named as such.
fn store_error(url: &str, message: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::External(format!("{url}: {message}").into())
}

impl StoreRegistry {
    pub fn new(options: StoreOptions) -> Self {
        let mut stores: HashMap<String, Arc<dyn ObjectStore>> = HashMap::new();
        stores.insert("file://".to_string(), Arc::new(LocalFileSystem::new()));
        Self {
            options,
            stores: RwLock::new(stores),
        }
    }

    /// Makes the store of `url`'s bucket or host.
    fn build(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        let key = url_key(url);
        let family = family_of(url.scheme()).ok_or_else(|| {
            store_error(
                &key,
                format!(
                    "unknown URL scheme '{}'; fairway reads s3://, s3a://, gs://, az://, \
                     abfss://, http:// and https:// (and local paths)",
                    url.scheme()
                ),
            )
        })?;
        if family != "http" && url.host_str().is_none_or(str::is_empty) {
            return Err(store_error(&key, "the URL names no bucket or container"));
        }
        let bucket = url.host_str().unwrap_or_default().to_string();
        let described = |e: object_store::Error| store_error(&key, e);
        let store: Arc<dyn ObjectStore> = match family {
            "s3" => {
                let mut builder = AmazonS3Builder::from_env();
                for (k, v) in self.options.of("s3") {
                    let config: AmazonS3ConfigKey = k.parse().map_err(described)?;
                    builder = builder.with_config(config, v);
                }
                builder = builder.with_bucket_name(&bucket);
                if builder
                    .get_config_value(&AmazonS3ConfigKey::Region)
                    .is_none()
                    && builder
                        .get_config_value(&AmazonS3ConfigKey::DefaultRegion)
                        .is_none()
                {
                    builder = builder.with_region("us-east-1");
                }
                let has = |k: AmazonS3ConfigKey| {
                    builder
                        .get_config_value(&k)
                        .is_some_and(|v| !v.trim().is_empty())
                };
                let key_id = has(AmazonS3ConfigKey::AccessKeyId);
                let secret = has(AmazonS3ConfigKey::SecretAccessKey);
                if key_id != secret {
                    return Err(store_error(
                        &key,
                        if key_id {
                            "an access key id without a secret access key \
                             (AWS_SECRET_ACCESS_KEY or fairway.store.s3.secret_access_key)"
                        } else {
                            "a secret access key without an access key id \
                             (AWS_ACCESS_KEY_ID or fairway.store.s3.access_key_id)"
                        },
                    ));
                }
                let skip = builder
                    .get_config_value(&AmazonS3ConfigKey::SkipSignature)
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"));
                let other_credentials = has(AmazonS3ConfigKey::WebIdentityTokenFile)
                    || has(AmazonS3ConfigKey::ContainerCredentialsRelativeUri)
                    || has(AmazonS3ConfigKey::ContainerCredentialsFullUri);
                if !key_id && !skip && !other_credentials && !self.options.instance_metadata("s3") {
                    return Err(store_error(
                        &key,
                        "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
                         (or --conf fairway.store.s3.access_key_id=... and \
                         fairway.store.s3.secret_access_key=...); for a public bucket \
                         fairway.store.s3.skip_signature=true; on EC2 \
                         fairway.store.s3.instance_metadata=true",
                    ));
                }
                builder = builder.with_retry(retry());
                builder = with_client_defaults_s3(builder);
                Arc::new(builder.build().map_err(described)?)
            }
            "gcs" => {
                let mut builder = GoogleCloudStorageBuilder::from_env();
                for (k, v) in self.options.of("gcs") {
                    let config: GoogleConfigKey = k.parse().map_err(described)?;
                    builder = builder.with_config(config, v);
                }
                builder = builder.with_bucket_name(&bucket);
                let has = |k: GoogleConfigKey| builder.get_config_value(&k).is_some();
                let credentials = has(GoogleConfigKey::ServiceAccount)
                    || has(GoogleConfigKey::ServiceAccountKey)
                    || has(GoogleConfigKey::ApplicationCredentials)
                    || builder
                        .get_config_value(&GoogleConfigKey::SkipSignature)
                        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
                    || gcloud_default_credentials();
                if !credentials && !self.options.instance_metadata("gcs") {
                    return Err(store_error(
                        &key,
                        "no credentials: set GOOGLE_APPLICATION_CREDENTIALS (or \
                         GOOGLE_SERVICE_ACCOUNT, or --conf \
                         fairway.store.gcs.service_account_path=...); for a public bucket \
                         fairway.store.gcs.skip_signature=true; on GCE \
                         fairway.store.gcs.instance_metadata=true",
                    ));
                }
                let builder = builder
                    .with_retry(retry())
                    .with_client_options(client_defaults());
                Arc::new(builder.build().map_err(described)?)
            }
            "azure" => {
                let mut builder = MicrosoftAzureBuilder::from_env().with_url(url.as_str());
                for (k, v) in self.options.of("azure") {
                    let config: AzureConfigKey = k.parse().map_err(described)?;
                    builder = builder.with_config(config, v);
                }
                let has = |k: AzureConfigKey| builder.get_config_value(&k).is_some();
                let true_ = |k: AzureConfigKey| {
                    builder
                        .get_config_value(&k)
                        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
                };
                let credentials = has(AzureConfigKey::AccessKey)
                    || has(AzureConfigKey::SasKey)
                    || has(AzureConfigKey::Token)
                    || has(AzureConfigKey::ClientSecret)
                    || has(AzureConfigKey::FederatedTokenFile)
                    || true_(AzureConfigKey::UseEmulator)
                    || true_(AzureConfigKey::UseAzureCli)
                    || true_(AzureConfigKey::SkipSignature);
                if !credentials && !self.options.instance_metadata("azure") {
                    return Err(store_error(
                        &key,
                        "no credentials: set AZURE_STORAGE_ACCOUNT_NAME with \
                         AZURE_STORAGE_ACCOUNT_KEY (or a SAS token, a client secret, or \
                         --conf fairway.store.azure.<key>=...); for a public container \
                         fairway.store.azure.skip_signature=true; on an Azure VM \
                         fairway.store.azure.instance_metadata=true",
                    ));
                }
                let builder = builder
                    .with_retry(retry())
                    .with_client_options(client_defaults());
                Arc::new(builder.build().map_err(described)?)
            }
            _ => {
                // An http:// URL asks for plain HTTP itself.
                let mut client = client_defaults().with_allow_http(url.scheme() == "http");
                for (k, v) in self.options.of("http") {
                    let config: ClientConfigKey = k.parse().map_err(described)?;
                    client = client.with_config(config, v);
                }
                let builder = HttpBuilder::new()
                    .with_url(key.clone())
                    .with_retry(retry())
                    .with_client_options(client);
                Arc::new(builder.build().map_err(described)?)
            }
        };
        Ok(store)
    }
}

/// The client defaults for S3, unless the environment or settings chose
/// their own (a builder's client options replace what `with_config` set).
fn with_client_defaults_s3(builder: AmazonS3Builder) -> AmazonS3Builder {
    let mut builder = builder;
    for (key, value) in [
        (ClientConfigKey::ConnectTimeout, "5s"),
        (ClientConfigKey::Timeout, "120s"),
    ] {
        let config = AmazonS3ConfigKey::Client(key);
        if builder.get_config_value(&config).is_none() {
            builder = builder.with_config(config, value);
        }
    }
    builder
}

/// Whether gcloud's application default credentials file exists.
fn gcloud_default_credentials() -> bool {
    std::env::var_os("HOME").is_some_and(|home| {
        std::path::Path::new(&home)
            .join(".config/gcloud/application_default_credentials.json")
            .is_file()
    })
}

impl ObjectStoreRegistry for StoreRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.stores
            .write()
            .expect("store registry lock")
            .insert(url_key(url), store)
    }

    fn deregister_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        let key = url_key(url);
        self.stores
            .write()
            .expect("store registry lock")
            .remove(&key)
            .ok_or_else(|| store_error(&key, "no store is registered for this URL"))
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        let key = url_key(url);
        if let Some(store) = self.stores.read().expect("store registry lock").get(&key) {
            return Ok(Arc::clone(store));
        }
        let store = self.build(url)?;
        let mut stores = self.stores.write().expect("store registry lock");
        Ok(Arc::clone(stores.entry(key).or_insert(store)))
    }
}

/// Uploads the local file `path` to `location` as one object: in parts,
/// so a file of any size fits, and completed last, so readers of the
/// object see it whole or not at all.
pub async fn upload_file(
    store: Arc<dyn ObjectStore>,
    location: object_store::path::Path,
    path: &std::path::Path,
) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut upload = object_store::buffered::BufWriter::new(store, location);
    let mut file = tokio::fs::File::open(path).await?;
    tokio::io::copy(&mut file, &mut upload).await?;
    upload.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_name_a_known_store_and_key_and_hide_secrets() {
        let mut options = StoreOptions::default();
        options.set("fairway.store.s3.region", "eu-west-1").unwrap();
        options
            .set("fairway.store.s3.secret_access_key", "hunter2")
            .unwrap();
        options
            .set("fairway.store.s3.access_key_id", "AKIA1")
            .unwrap();
        options
            .set("fairway.store.gcs.service_account_path", "/k.json")
            .unwrap();
        options
            .set("fairway.store.http.allow_http", "true")
            .unwrap();
        let err = options.set("fairway.store.s3.colour", "red").unwrap_err();
        assert!(err.contains("'colour'") && err.contains("s3"), "{err}");
        let err = options.set("fairway.store.ftp.host", "x").unwrap_err();
        assert!(err.contains("unknown store 'ftp'"), "{err}");
        assert!(options.set("fairway.store.s3", "x").is_err());
        let shown = format!("{options:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("AKIA1") && shown.contains("eu-west-1"),
            "{shown}"
        );
    }

    #[test]
    fn a_store_without_credentials_is_refused_with_advice() {
        let registry = StoreRegistry::new(StoreOptions::default());
        // Whatever the environment holds, these settings leave no key.
        let mut options = StoreOptions::default();
        options.set("fairway.store.s3.access_key_id", "").unwrap();
        options
            .set("fairway.store.s3.secret_access_key", "")
            .unwrap();
        let registry_empty = StoreRegistry::new(options);
        let url = Url::parse("s3://bucket/x.parquet").unwrap();
        let err = registry_empty.get_store(&url).unwrap_err().to_string();
        assert!(
            err.contains("s3://bucket") && err.contains("no credentials"),
            "{err}"
        );
        let err = registry
            .get_store(&Url::parse("ftp://host/x").unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown URL scheme 'ftp'"), "{err}");
    }

    #[test]
    fn stores_are_made_once_per_bucket() {
        let mut options = StoreOptions::default();
        options.set("fairway.store.s3.access_key_id", "a").unwrap();
        options
            .set("fairway.store.s3.secret_access_key", "b")
            .unwrap();
        let registry = StoreRegistry::new(options);
        let one = registry
            .get_store(&Url::parse("s3://b1/x/y.parquet").unwrap())
            .unwrap();
        let again = registry
            .get_store(&Url::parse("s3://b1/other").unwrap())
            .unwrap();
        let other = registry
            .get_store(&Url::parse("s3a://b2/z").unwrap())
            .unwrap();
        assert!(Arc::ptr_eq(&one, &again));
        assert!(!Arc::ptr_eq(&one, &other));
        let debug = format!("{registry:?}");
        assert!(
            debug.contains("s3://b1") && !debug.contains("\"b\""),
            "{debug}"
        );
    }
}

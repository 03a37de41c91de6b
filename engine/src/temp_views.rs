//! Temporary views that belong to one client: a catalog overlay that looks a
//! name up in the client's own views first and in the shared catalog after.
//!
//! Spark's temporary views live in the session that made them; fairway's
//! tables (`--tables`, `CREATE EXTERNAL TABLE`, `CREATE VIEW`) are shared by
//! every client of a [`crate::Session`]. [`crate::Session::isolated_client`]
//! wraps the shared catalog list so that each client (a Spark Connect
//! session, say) has its own temporary views, while everything else still
//! goes to the shared catalog.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, CatalogProviderList, SchemaProvider, TableProvider};
use datafusion::error::{DataFusionError, Result};

/// One client's temporary views, by (normalised) name.
#[derive(Default, Debug)]
pub(crate) struct TempViews {
    views: RwLock<HashMap<String, Arc<dyn TableProvider>>>,
}

impl TempViews {
    fn get(&self, name: &str) -> Option<Arc<dyn TableProvider>> {
        self.views
            .read()
            .expect("temp views lock")
            .get(name)
            .cloned()
    }

    /// Adds or (with `replace`) replaces a view; without `replace` an
    /// existing view of that name is an error naming it.
    pub(crate) fn insert(
        &self,
        name: &str,
        view: Arc<dyn TableProvider>,
        replace: bool,
    ) -> Result<()> {
        let mut views = self.views.write().expect("temp views lock");
        if !replace && views.contains_key(name) {
            return Err(DataFusionError::Plan(format!(
                "temporary view '{name}' already exists"
            )));
        }
        views.insert(name.to_string(), view);
        Ok(())
    }

    fn remove(&self, name: &str) -> Option<Arc<dyn TableProvider>> {
        self.views.write().expect("temp views lock").remove(name)
    }

    pub(crate) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .views
            .read()
            .expect("temp views lock")
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }
}

/// The shared catalog list, with the default schema of the default catalog
/// overlaid by one client's temporary views.
#[derive(Debug)]
pub(crate) struct OverlayCatalogList {
    shared: Arc<dyn CatalogProviderList>,
    default_catalog: String,
    default_schema: String,
    temp: Arc<TempViews>,
}

impl OverlayCatalogList {
    pub(crate) fn new(
        shared: Arc<dyn CatalogProviderList>,
        default_catalog: &str,
        default_schema: &str,
        temp: Arc<TempViews>,
    ) -> Self {
        Self {
            shared,
            default_catalog: default_catalog.to_string(),
            default_schema: default_schema.to_string(),
            temp,
        }
    }
}

impl CatalogProviderList for OverlayCatalogList {
    fn register_catalog(
        &self,
        name: String,
        catalog: Arc<dyn CatalogProvider>,
    ) -> Option<Arc<dyn CatalogProvider>> {
        self.shared.register_catalog(name, catalog)
    }

    fn catalog_names(&self) -> Vec<String> {
        self.shared.catalog_names()
    }

    fn catalog(&self, name: &str) -> Option<Arc<dyn CatalogProvider>> {
        let catalog = self.shared.catalog(name)?;
        if name != self.default_catalog {
            return Some(catalog);
        }
        Some(Arc::new(OverlayCatalog {
            shared: catalog,
            default_schema: self.default_schema.clone(),
            temp: Arc::clone(&self.temp),
        }))
    }
}

#[derive(Debug)]
struct OverlayCatalog {
    shared: Arc<dyn CatalogProvider>,
    default_schema: String,
    temp: Arc<TempViews>,
}

impl CatalogProvider for OverlayCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.shared.schema_names()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        let schema = self.shared.schema(name)?;
        if name != self.default_schema {
            return Some(schema);
        }
        Some(Arc::new(OverlaySchema {
            shared: schema,
            temp: Arc::clone(&self.temp),
        }))
    }

    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> Result<Option<Arc<dyn SchemaProvider>>> {
        self.shared.register_schema(name, schema)
    }

    fn deregister_schema(
        &self,
        name: &str,
        cascade: bool,
    ) -> Result<Option<Arc<dyn SchemaProvider>>> {
        self.shared.deregister_schema(name, cascade)
    }
}

/// Temporary views first, then the shared schema. New tables and views go
/// to the shared schema (temporary views are added through
/// [`TempViews::insert`]); dropping a name drops the temporary view if there
/// is one, else the shared table.
#[derive(Debug)]
struct OverlaySchema {
    shared: Arc<dyn SchemaProvider>,
    temp: Arc<TempViews>,
}

#[async_trait]
impl SchemaProvider for OverlaySchema {
    fn table_names(&self) -> Vec<String> {
        let mut names: BTreeSet<String> = self.shared.table_names().into_iter().collect();
        names.extend(self.temp.names());
        names.into_iter().collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        match self.temp.get(name) {
            Some(view) => Ok(Some(view)),
            None => self.shared.table(name).await,
        }
    }

    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        self.shared.register_table(name, table)
    }

    fn deregister_table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        match self.temp.remove(name) {
            Some(view) => Ok(Some(view)),
            None => self.shared.deregister_table(name),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.temp.get(name).is_some() || self.shared.table_exist(name)
    }
}

//! Reads several kinds need in one observation, made once (part of the kind
//! contract: a kind's `observe` gets them in its [`super::Scope`]).

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};

type Erased = Arc<dyn Any + Send + Sync>;

/// One shared read, awaited by whoever needs it.
type SharedRead = Shared<BoxFuture<'static, Result<Erased, String>>>;

/// Reads two kinds need in one observation, made once: a REST API's
/// resource tree (its paths for `api_resource`, its methods for
/// `api_route`) is the call API Gateway limits most (5 in 2 s).
#[derive(Clone, Default)]
pub struct SharedReads(Arc<Mutex<HashMap<String, SharedRead>>>);

impl SharedReads {
    /// What `read` answers for `key`: read by whoever asks first, awaited by all.
    pub async fn get<T, F>(&self, key: String, read: F) -> anyhow::Result<Arc<T>>
    where
        T: Send + Sync + 'static,
        F: Future<Output = anyhow::Result<T>> + Send + 'static,
    {
        let shared = {
            let mut reads = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            let erased = read.map(|r| r.map(|v| Arc::new(v) as Erased).map_err(|e| format!("{e:#}")));
            reads.entry(key).or_insert_with(|| erased.boxed().shared()).clone()
        };
        let value = shared.await.map_err(anyhow::Error::msg)?;
        value.downcast::<T>().map_err(|_| anyhow::anyhow!("a shared read was asked for as another type"))
    }
}

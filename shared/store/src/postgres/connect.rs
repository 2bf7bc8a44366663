//! Opens each pooled connection, with a fresh password when one is supplied (IAM tokens last
//! 15 minutes, so a token cannot be fixed in the pool's configuration).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bestchat_domain::ports::credentials::ConnectionPassword;
use deadpool_postgres::Connect;
use tokio::task::JoinHandle;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, Config, Error, Socket};

pub struct Connector<T> {
    tls: T,
    password: Option<Arc<dyn ConnectionPassword>>,
}

impl<T> Connector<T> {
    pub fn new(tls: T, password: Option<Arc<dyn ConnectionPassword>>) -> Self {
        Self { tls, password }
    }
}

impl<T> Connect for Connector<T>
where
    T: MakeTlsConnect<Socket> + Clone + Sync + Send + 'static,
    T::Stream: Sync + Send,
    T::TlsConnect: Sync + Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    fn connect(
        &self,
        config: &Config,
    ) -> Pin<Box<dyn Future<Output = Result<(Client, JoinHandle<()>), Error>> + Send + '_>> {
        let tls = self.tls.clone();
        let mut config = config.clone();
        let password = self.password.clone();
        Box::pin(async move {
            if let Some(source) = password {
                match source.password().await {
                    Ok(token) => {
                        config.password(token);
                    }
                    // The connection then fails authentication; this says why.
                    Err(e) => {
                        tracing::error!(error = %e, "no database password for a new connection")
                    }
                }
            }
            let (client, connection) = config.connect(tls).await?;
            let task = tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "database connection closed with an error");
                }
            });
            Ok((client, task))
        })
    }
}

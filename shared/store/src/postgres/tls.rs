//! TLS to PostgreSQL. Asked for with `sslmode=require` in the URL; the server's certificate is
//! always verified (unlike libpq's `require`): against `DATABASE_CA_FILE` when given, against the
//! AWS bundle compiled in (`DATABASE_CA_BUNDLE=aws-rds`: Aurora and RDS Proxy), and against the
//! Mozilla roots otherwise.

use std::path::PathBuf;
use std::sync::Arc;

use bestchat_domain::ports::store::StoreError;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};
use tokio_postgres_rustls::MakeRustlsConnect;

/// The certificate authorities of Amazon RDS and of RDS Proxy (Amazon Trust Services), shipped
/// inside the binary so a function needs no file beside it.
pub const AWS_RDS_BUNDLE: &str = include_str!("../../certs/aws-rds-ca.pem");

/// What verifies the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsRoots {
    /// The Mozilla roots (a server with a public certificate).
    Mozilla,
    /// [`AWS_RDS_BUNDLE`].
    AwsRds,
    /// A PEM bundle on disk.
    File(PathBuf),
}

pub fn connector(roots: &TlsRoots) -> Result<MakeRustlsConnect, StoreError> {
    let mut store = RootCertStore::empty();
    match roots {
        TlsRoots::File(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    StoreError::Internal(format!(
                        "DATABASE_CA_FILE {} is not a PEM bundle: {e}",
                        path.display()
                    ))
                })?;
            add(
                &mut store,
                certs,
                &format!("DATABASE_CA_FILE {}", path.display()),
            )?;
        }
        TlsRoots::AwsRds => {
            let certs = CertificateDer::pem_slice_iter(AWS_RDS_BUNDLE.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StoreError::Internal(format!("the AWS RDS CA bundle: {e}")))?;
            add(&mut store, certs, "the AWS RDS CA bundle")?;
        }
        TlsRoots::Mozilla => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let roots = store;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Internal(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

fn add(
    store: &mut RootCertStore,
    certs: Vec<CertificateDer<'static>>,
    source: &str,
) -> Result<(), StoreError> {
    let (added, _) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(StoreError::Internal(format!(
            "{source} holds no usable certificate"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_aws_bundle_holds_rds_and_proxy_authorities() {
        let certs: Vec<_> = CertificateDer::pem_slice_iter(AWS_RDS_BUNDLE.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap_or_default();
        let mut store = RootCertStore::empty();
        let (added, rejected) = store.add_parsable_certificates(certs);
        assert_eq!(rejected, 0);
        // 115 RDS authorities (every region) and the 5 Amazon Trust Services roots of RDS Proxy.
        assert_eq!(added, 120);
        assert!(connector(&TlsRoots::AwsRds).is_ok());
    }
}

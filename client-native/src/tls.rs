//! TLS settings: rustls with certificate verification always on.

use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use crate::error::BuildError;

/// Which certificate authorities the client trusts.
#[derive(Clone, Debug, Default)]
pub enum TlsRoots {
    /// The Mozilla roots bundled by `webpki-roots` (and the system's roots too with the
    /// `native-roots` feature). The default.
    #[default]
    Default,
    /// Only these roots: for a private CA or a self-signed server certificate (DER).
    Custom(Vec<Vec<u8>>),
}

impl TlsRoots {
    /// The rustls configuration; verification is never disabled. The default one is built
    /// once per process and shared: its root store alone costs ~15 KB a client. Custom
    /// roots are shared too, between the clients that use the same ones.
    pub(crate) fn client_config(&self) -> Result<Arc<ClientConfig>, BuildError> {
        static DEFAULT: OnceLock<Arc<ClientConfig>> = OnceLock::new();
        match self {
            Self::Default => {
                if let Some(config) = DEFAULT.get() {
                    return Ok(Arc::clone(config));
                }
                let mut roots = RootCertStore::empty();
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                #[cfg(feature = "native-roots")]
                {
                    let native = rustls_native_certs::load_native_certs();
                    roots.add_parsable_certificates(native.certs);
                }
                let config = build(roots)?;
                Ok(Arc::clone(DEFAULT.get_or_init(|| config)))
            }
            Self::Custom(ders) => {
                // Clients with the same roots share one configuration while any of them
                // lives, as the default one is shared.
                static CUSTOM: Mutex<Vec<SharedCustom>> = Mutex::new(Vec::new());
                let mut shared = CUSTOM.lock().unwrap_or_else(PoisonError::into_inner);
                shared.retain(|(_, config)| config.strong_count() > 0);
                if let Some(config) = shared
                    .iter()
                    .find(|(roots, _)| roots == ders)
                    .and_then(|(_, config)| config.upgrade())
                {
                    return Ok(config);
                }
                let mut roots = RootCertStore::empty();
                for der in ders {
                    roots
                        .add(CertificateDer::from(der.clone()))
                        .map_err(|error| BuildError::Tls(error.to_string()))?;
                }
                let config = build(roots)?;
                shared.push((ders.clone(), Arc::downgrade(&config)));
                Ok(config)
            }
        }
    }
}

/// Custom roots (DER) and the configuration built from them, while a client uses it.
type SharedCustom = (Vec<Vec<u8>>, Weak<ClientConfig>);

fn build(roots: RootCertStore) -> Result<Arc<ClientConfig>, BuildError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| BuildError::Tls(error.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_with_the_same_roots_share_one_configuration() {
        let custom = TlsRoots::Custom(Vec::new()).client_config().unwrap();
        let again = TlsRoots::Custom(Vec::new()).client_config().unwrap();
        assert!(Arc::ptr_eq(&custom, &again));
        let default = TlsRoots::Default.client_config().unwrap();
        assert!(Arc::ptr_eq(
            &default,
            &TlsRoots::Default.client_config().unwrap()
        ));
        assert!(!Arc::ptr_eq(&custom, &default));
    }
}

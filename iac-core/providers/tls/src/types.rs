//! The typed resources of the tls and random providers. Type tokens are `tls:<Kind>` and
//! `random:<Kind>`.

iac_core::resource! {
    /// A private key, generated at create. Its PEM is secret.
    pub resource PrivateKey("tls:PrivateKey") {
        args PrivateKeyArgs, values PrivateKeyValues {
            /// `ecdsa-p256` (the default), `ecdsa-p384` or `ed25519`.
            algorithm: Option<String>,
        }
        outputs {
            /// The key, PKCS#8 PEM (secret).
            private_key_pem: String,
            /// Its public key, PEM.
            public_key_pem: String,
        }
        secret [private_key_pem]
    }
}

iac_core::resource! {
    /// An X.509 certificate for a key: self-signed when no CA is given (a CA itself with
    /// `is_ca`), else signed by the CA. Replaced by the first plan inside its early-renewal
    /// window; any input but `early_renewal_days` re-issues it.
    pub resource Certificate("tls:Certificate") {
        args CertificateArgs, values CertificateValues {
            /// The certified key's PEM (a [`PrivateKey`]'s `private_key_pem`).
            private_key_pem: String,
            /// The subject's common name.
            common_name: String,
            /// The subject's organisation.
            organization: Option<String>,
            /// DNS names it is valid for.
            dns_names: Vec<String>,
            /// IP addresses it is valid for.
            ip_addresses: Vec<String>,
            /// A CA, which may sign certificates (default false).
            is_ca: Option<bool>,
            /// How long it is valid, in days from its creation.
            validity_days: i64,
            /// How many days before it expires a plan renews it (default a third of the
            /// validity).
            early_renewal_days: Option<i64>,
            /// The signing CA's key PEM (with `ca_cert_pem`; neither: self-signed).
            ca_private_key_pem: Option<String>,
            /// The signing CA's certificate PEM.
            ca_cert_pem: Option<String>,
        }
        outputs {
            /// The certificate, PEM.
            cert_pem: String,
            /// Valid from (RFC 3339).
            not_before: String,
            /// Valid until (RFC 3339).
            not_after: String,
        }
    }
}

iac_core::resource! {
    /// A random password, generated at create. Its result is secret.
    pub resource Password("random:Password") {
        args PasswordArgs, values PasswordValues {
            /// How many characters (12 to 256).
            length: i64,
            /// Punctuation too (default false: letters and digits, safe in any config file).
            special: Option<bool>,
            /// Any change makes a new password.
            keepers: Vec<String>,
        }
        outputs {
            /// The password (secret).
            result: String,
        }
        secret [result]
    }
}

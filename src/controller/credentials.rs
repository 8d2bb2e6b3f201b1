//! The stack's passwords: generated once with the operating system's CSPRNG, stored
//! in `<stack>-credentials`, and never overwritten. A value that is already there is
//! kept as it is, so a stack re-created under `deletionPolicy: Retain` finds its data
//! readable with the same passwords.

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, PostParams};

use crate::api::ValidatedStack;
use crate::render::Credentials;
use crate::render::credentials::{
    CACHE_PASSWORD_KEY, DATABASE_BACKUP_PASSWORD_KEY, DATABASE_PASSWORD_KEY,
    DATABASE_ROOT_PASSWORD_KEY, secret, secret_name,
};
use crate::{Error, Result};

/// Length of generated passwords: 32 characters of 62 symbols, about 190 bits.
pub const PASSWORD_LENGTH: usize = 32;

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A fresh random password of [`PASSWORD_LENGTH`] letters and digits.
pub fn generate_password() -> Result<String> {
    let mut password = String::with_capacity(PASSWORD_LENGTH);
    let mut buffer = [0u8; 64];
    while password.len() < PASSWORD_LENGTH {
        getrandom::fill(&mut buffer).map_err(|e| Error::Credentials(e.to_string()))?;
        // Rejection sampling keeps every symbol equally likely: 248 = 4 * 62.
        for byte in buffer.iter().filter(|b| **b < 248) {
            if password.len() == PASSWORD_LENGTH {
                break;
            }
            password.push(char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]));
        }
    }
    Ok(password)
}

fn read_key(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .and_then(|v| String::from_utf8(v.0.clone()).ok())
        .filter(|v| !v.is_empty())
}

/// The stack's credentials: read from its Secret, with any missing value generated.
/// Creates the Secret when it does not exist; the apply step then keeps its labels
/// and owner in line with the spec, with the same values.
pub async fn ensure(client: &Client, stack: &ValidatedStack) -> Result<Credentials> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &stack.namespace);
    let name = secret_name(stack);
    let existing = api
        .get_opt(&name)
        .await
        .map_err(|e| Error::kube("read", "Secret", &name, e))?;
    let value = |key: &str| -> Result<String> {
        match existing.as_ref().and_then(|s| read_key(s, key)) {
            Some(v) => Ok(v),
            None => generate_password(),
        }
    };
    let credentials = Credentials {
        database_root_password: value(DATABASE_ROOT_PASSWORD_KEY)?,
        database_password: value(DATABASE_PASSWORD_KEY)?,
        database_backup_password: value(DATABASE_BACKUP_PASSWORD_KEY)?,
        cache_password: value(CACHE_PASSWORD_KEY)?,
    };
    if existing.is_none() {
        match api
            .create(&PostParams::default(), &secret(stack, &credentials))
            .await
        {
            Ok(_) => {}
            // Someone created it first: its values win, never ours.
            Err(kube::Error::Api(status)) if status.code == 409 => {
                let winner = api
                    .get(&name)
                    .await
                    .map_err(|e| Error::kube("read", "Secret", &name, e))?;
                return Ok(Credentials {
                    database_root_password: read_key(&winner, DATABASE_ROOT_PASSWORD_KEY)
                        .unwrap_or(credentials.database_root_password),
                    database_password: read_key(&winner, DATABASE_PASSWORD_KEY)
                        .unwrap_or(credentials.database_password),
                    database_backup_password: read_key(&winner, DATABASE_BACKUP_PASSWORD_KEY)
                        .unwrap_or(credentials.database_backup_password),
                    cache_password: read_key(&winner, CACHE_PASSWORD_KEY)
                        .unwrap_or(credentials.cache_password),
                });
            }
            Err(e) => return Err(Error::kube("create", "Secret", &name, e)),
        }
    }
    Ok(credentials)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_long_alphanumeric_and_distinct() {
        let a = generate_password().expect("random");
        let b = generate_password().expect("random");
        assert_eq!(a.len(), PASSWORD_LENGTH);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }
}

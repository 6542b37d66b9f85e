//! What a process can be given: environment names without `=` or NUL, values and arguments
//! without NUL. Checked when the manifest is read (with the key's place) and again for what
//! discovery found, so nothing fails only when its test starts.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// Why `name` cannot be an environment variable's name, if it cannot.
pub(crate) fn bad_env_name(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("an environment variable's name must not be empty".into())
    } else if name.contains('=') {
        Some(format!(
            "environment variable name {name:?} must not contain '=' (write the value after the name: NAME = \"value\")"
        ))
    } else if name.contains('\0') {
        Some(format!(
            "environment variable name {name:?} must not contain a NUL character"
        ))
    } else {
        None
    }
}

/// Why a process cannot receive `value` (an argument or an environment value), if it cannot.
pub(crate) fn bad_process_string(what: &str, value: &str) -> Option<String> {
    value
        .contains('\0')
        .then(|| format!("{what} {value:?} contains a NUL character, which no process can receive"))
}

/// An `env = { NAME = "value" }` table whose names and values a process can receive.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Env(pub(crate) BTreeMap<String, String>);

/// One name, checked as it is read so the error points at it.
struct Name(String);

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        match bad_env_name(&name) {
            Some(problem) => Err(de::Error::custom(problem)),
            None => Ok(Name(name)),
        }
    }
}

/// A string a process can receive (an environment value or an argument).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProcessString(pub(crate) String);

impl<'de> Deserialize<'de> for ProcessString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = String::deserialize(d)?;
        match bad_process_string("value", &value) {
            Some(problem) => Err(de::Error::custom(problem)),
            None => Ok(ProcessString(value)),
        }
    }
}

struct EnvVisitor;

impl<'de> Visitor<'de> for EnvVisitor {
    type Value = Env;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table of environment variables such as { MODE = \"fast\" }")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Env, A::Error> {
        let mut env = BTreeMap::new();
        while let Some((Name(name), ProcessString(value))) = map.next_entry()? {
            env.insert(name, value);
        }
        Ok(Env(env))
    }
}

impl<'de> Deserialize<'de> for Env {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EnvVisitor)
    }
}

//! Serde on the environment: a settings struct declares each variable on the field it sets
//! (`#[serde(rename = …)]` naming its variable, its default in `Default`), and [`Environment::section`] fills it.
//! An empty value is unset (a template may write `NAME: ""`); flags are 1/0 (true/false, on/off
//! and yes/no too); a malformed value is refused with a sentence naming its variable.

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};

/// A setting that cannot be used, named in the sentence.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub(crate) String);

/// Where values come from: the process environment, or a map in tests.
pub(crate) struct Environment<'a>(pub(crate) &'a dyn Fn(&str) -> Option<String>);

impl Environment<'_> {
    /// A variable's value, `None` when unset or empty.
    pub(crate) fn optional(&self, key: &str) -> Option<String> {
        (self.0)(key).filter(|v| !v.trim().is_empty())
    }

    /// One settings struct (`#[serde(default)]`, every field renamed to its variable).
    pub(crate) fn section<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        T::deserialize(Section(self)).map_err(|e| ConfigError(e.0))
    }
}

#[derive(Debug)]
pub(crate) struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

struct Section<'e, 'a>(&'e Environment<'a>);

impl<'de> de::Deserializer<'de> for Section<'_, '_> {
    type Error = Error;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let set = fields
            .iter()
            .filter_map(|key| Some((*key, self.0.optional(key)?)))
            .collect::<Vec<_>>();
        visitor.visit_map(Fields {
            set: set.into_iter(),
            value: None,
        })
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
        Err(Error("a section of the configuration is a struct".into()))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

struct Fields {
    set: std::vec::IntoIter<(&'static str, String)>,
    value: Option<Value>,
}

impl<'de> MapAccess<'de> for Fields {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, raw)) = self.set.next() else {
            return Ok(None);
        };
        self.value = Some(Value { key, raw });
        seed.deserialize(key.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let value = self
            .value
            .take()
            .ok_or_else(|| Error("a value without its variable".into()))?;
        seed.deserialize(value)
    }
}

/// One variable's text, parsed as the field's type asks.
struct Value {
    key: &'static str,
    raw: String,
}

impl Value {
    fn number<T: std::str::FromStr>(&self) -> Result<T, Error> {
        self.raw.trim().parse().map_err(|_| {
            Error(format!(
                "{} must be a whole number, got {:?}",
                self.key, self.raw
            ))
        })
    }
}

macro_rules! numbers {
    ($($method:ident $visit:ident $ty:ty),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            visitor.$visit(self.number::<$ty>()?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Value {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_string(self.raw)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.raw.trim() {
            "1" | "true" | "on" | "yes" => visitor.visit_bool(true),
            "0" | "false" | "off" | "no" => visitor.visit_bool(false),
            other => Err(Error(format!("{} must be 1 or 0, got {other:?}", self.key))),
        }
    }

    numbers! {
        deserialize_u8 visit_u8 u8, deserialize_u16 visit_u16 u16, deserialize_u32 visit_u32 u32,
        deserialize_u64 visit_u64 u64, deserialize_i8 visit_i8 i8, deserialize_i16 visit_i16 i16,
        deserialize_i32 visit_i32 i32, deserialize_i64 visit_i64 i64
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // Unset variables never reach a value: present means `Some`.
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    /// A unit variant by its name (`BESTCHAT_BUDGET_PERIOD=day`).
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let name: de::value::StringDeserializer<Error> =
            de::IntoDeserializer::into_deserializer(self.raw.trim().to_owned());
        let key = self.key;
        visitor
            .visit_enum(name)
            .map_err(|e| Error(format!("{key}: {}", e.0)))
    }

    serde::forward_to_deserialize_any! {
        i128 u128 f32 f64 char str string bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(default)]
    struct Example {
        #[serde(rename = "EXAMPLE_COUNT")]
        count: usize,
        #[serde(
            rename = "EXAMPLE_WAIT_MS",
            deserialize_with = "bestchat_domain::settings::millis"
        )]
        wait: Duration,
        #[serde(rename = "EXAMPLE_ON")]
        on: bool,
        #[serde(rename = "EXAMPLE_NAME")]
        name: Option<String>,
        #[serde(rename = "EXAMPLE_PERIOD")]
        period: bestchat_domain::budget::Period,
    }

    impl Default for Example {
        fn default() -> Self {
            Self {
                count: 3,
                wait: Duration::from_millis(250),
                on: true,
                name: None,
                period: bestchat_domain::budget::Period::Month,
            }
        }
    }

    #[test]
    fn a_named_choice_is_read_by_its_name_and_a_wrong_one_names_its_variable() {
        let e = read(&[("EXAMPLE_PERIOD", " day ")]).unwrap();
        assert_eq!(e.period, bestchat_domain::budget::Period::Day);
        let wrong = read(&[("EXAMPLE_PERIOD", "week")]).unwrap_err();
        assert!(wrong.0.contains("EXAMPLE_PERIOD"), "{}", wrong.0);
        assert!(wrong.0.contains("week"), "{}", wrong.0);
    }

    fn read(vars: &[(&str, &str)]) -> Result<Example, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = |k: &str| map.get(k).cloned();
        Environment(&lookup).section()
    }

    #[test]
    fn unset_and_empty_variables_keep_their_defaults() {
        assert_eq!(read(&[]).unwrap(), Example::default());
        assert_eq!(
            read(&[("EXAMPLE_COUNT", ""), ("EXAMPLE_NAME", "  ")]).unwrap(),
            Example::default()
        );
    }

    #[test]
    fn set_variables_are_parsed_by_type() {
        let e = read(&[
            ("EXAMPLE_COUNT", " 7 "),
            ("EXAMPLE_WAIT_MS", "1500"),
            ("EXAMPLE_ON", "0"),
            ("EXAMPLE_NAME", "x"),
        ])
        .unwrap();
        assert_eq!(
            e,
            Example {
                count: 7,
                wait: Duration::from_millis(1500),
                on: false,
                name: Some("x".into()),
                period: bestchat_domain::budget::Period::Month,
            }
        );
    }

    #[test]
    fn malformed_values_name_their_variable() {
        for (key, bad) in [
            ("EXAMPLE_COUNT", "-1"),
            ("EXAMPLE_WAIT_MS", "1s"),
            ("EXAMPLE_ON", "maybe"),
        ] {
            let e = read(&[(key, bad)]).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains(bad), "{key}={bad}: {e}");
        }
    }
}

//! The wire shape of the API's text fields: a JSON string of a bounded length, and nothing
//! else. poem-openapi's `String` also takes `false` or `12` and stores "false"; these refuse
//! them, and put their bounds in the spec. The domain types (`erasure_domain`) then decide
//! what the text means; a wire check never stands in for them.

use std::borrow::Cow;

use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef, Registry},
    types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
};
use serde_json::Value;

use crate::domain::{Password, PersonName, VseeId};

/// Unicode White_Space, spelled out for the spec's pattern: "at least one other character".
/// (`\S` means less in JSON Schema's ECMAScript regexes than in Rust's `char::is_whitespace`,
/// which is what the server checks.)
const NOT_ONLY_WHITE_SPACE: &str =
    r"[^\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";

macro_rules! text_field {
    ($(#[$doc:meta])* $name:ident, min = $min:expr, max = $max:expr $(, format = $format:literal)? $(, not_blank = $not_blank:literal)?) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Type for $name {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> Cow<'static, str> {
                "string".into()
            }

            fn schema_ref() -> MetaSchemaRef {
                let mut schema = MetaSchema::new("string");
                schema.min_length = Some($min).filter(|m: &usize| *m > 0);
                schema.max_length = Some($max);
                $(schema.format = Some($format);)?
                $(if $not_blank {
                    schema.pattern = Some(NOT_ONLY_WHITE_SPACE.to_owned());
                })?
                MetaSchemaRef::Inline(Box::new(schema))
            }

            fn as_raw_value(&self) -> Option<&Self::RawValueType> {
                Some(self)
            }

            fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
                Box::new(self.as_raw_value().into_iter())
            }
        }

        impl ParseFromJSON for $name {
            fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
                match value {
                    Some(Value::String(text)) => {
                        let len = text.chars().count();
                        if !($min..=$max).contains(&len) {
                            return Err(ParseError::custom(format!(
                                "a string of {} to {} characters was expected, not {len}",
                                $min, $max
                            )));
                        }
                        $(if $not_blank && text.chars().all(char::is_whitespace) {
                            return Err(ParseError::custom("a text that is not only white space was expected"));
                        })?
                        Ok(Self(text))
                    }
                    Some(other) => Err(ParseError::expected_type(other)),
                    None => Err(ParseError::expected_input()),
                }
            }
        }

        impl ToJSON for $name {
            fn to_json(&self) -> Option<Value> {
                Some(Value::String(self.0.clone()))
            }
        }
    };
}

text_field!(
    /// A VSee ID as typed: 3–32 characters (letters, digits, '.', '-', '_'; compared without
    /// case).
    VseeIdText,
    min = VseeId::MIN_LEN,
    max = VseeId::MAX_LEN
);
text_field!(
    /// An email address or a VSee ID, as an auditor types it to look someone up.
    IdentifierText,
    min = 1,
    max = 320,
    not_blank = true
);
text_field!(
    /// An email address as typed.
    EmailText,
    min = 3,
    max = 254,
    format = "email"
);
text_field!(
    /// A new password: 8–128 characters, not one of the most common passwords.
    NewPasswordText,
    min = Password::MIN_LEN,
    max = Password::MAX_LEN
);
text_field!(
    /// A password being proven (log-in, re-authentication, the current password).
    PasswordText,
    min = 1,
    max = 1024
);
text_field!(
    /// A first or last name: up to 64 characters; may be empty.
    NameText,
    min = 0,
    max = PersonName::MAX_LEN
);

text_field!(
    /// Why, as a person reads it later: 1 to 1,000 characters, not only white space.
    ReasonText,
    min = 1,
    max = 1000,
    not_blank = true
);
text_field!(
    /// A token from a link we sent (43 URL-safe characters); any other string is not one.
    TokenText,
    min = 1,
    max = 128
);
text_field!(
    /// A note or a question on a ticket: 1 to 5,000 characters, not only white space.
    NoteText,
    min = 1,
    max = 5000,
    not_blank = true
);

/// An optional field that may be left out, but not sent as `null`: poem-openapi's `Option`
/// takes `null` as "absent", which the spec (not nullable) does not say, and which a client
/// sending `"first_name": null` to clear a name would silently see ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Optional<T>(pub Option<T>);

impl<T> Optional<T> {
    pub fn as_ref(&self) -> Option<&T> {
        self.0.as_ref()
    }
}

impl<T: Type> Type for Optional<T> {
    const IS_REQUIRED: bool = false;
    type RawValueType = T::RawValueType;
    type RawElementValueType = T::RawElementValueType;

    fn name() -> Cow<'static, str> {
        format!("optional_{}", T::name()).into()
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        self.0.as_ref().and_then(Type::as_raw_value)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        match &self.0 {
            Some(value) => value.raw_element_iter(),
            None => Box::new(std::iter::empty()),
        }
    }

    fn is_none(&self) -> bool {
        self.0.is_none()
    }
}

impl<T: ParseFromJSON> ParseFromJSON for Optional<T> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            None => Ok(Self(None)),
            Some(Value::Null) => Err(ParseError::custom(
                "null is not accepted here: leave the field out to keep its value",
            )),
            Some(value) => T::parse_from_json(Some(value))
                .map(|v| Self(Some(v)))
                .map_err(ParseError::propagate),
        }
    }
}

impl<T: ToJSON> ToJSON for Optional<T> {
    fn to_json(&self) -> Option<Value> {
        self.0.as_ref().and_then(ToJSON::to_json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_strings_of_the_declared_length_are_taken() {
        assert!(NameText::parse_from_json(Some(json!("Zoë"))).is_ok());
        for bad in [
            json!(false),
            json!(12),
            json!(null),
            json!(["a"]),
            json!("a".repeat(65)),
        ] {
            assert!(NameText::parse_from_json(Some(bad.clone())).is_err(), "{bad}");
        }
        assert!(VseeIdText::parse_from_json(Some(json!("ab"))).is_err());
        assert!(VseeIdText::parse_from_json(None).is_err());
    }

    #[test]
    fn an_optional_field_may_be_absent_but_not_null() {
        assert_eq!(Optional::<bool>::parse_from_json(None).unwrap(), Optional(None));
        assert_eq!(
            Optional::<bool>::parse_from_json(Some(json!(true))).unwrap(),
            Optional(Some(true))
        );
        assert!(Optional::<bool>::parse_from_json(Some(json!(null))).is_err());
        assert!(Optional::<NameText>::parse_from_json(Some(json!(null))).is_err());
    }
}

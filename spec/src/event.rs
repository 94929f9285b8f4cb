//! The callback event: [`ImagePublished`] data in a CloudEvents 1.0
//! structured envelope, [`CloudEvent`] (`spec/callbacks.md` CB-1, CB-2).

#[cfg(feature = "schema")]
use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
#[cfg(feature = "schema")]
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{ApiVersion, Digest, ImageReference, Repository, Stage, Tag};

/// The CloudEvents `type` of [`ImagePublished`]: "versioned, so that a
/// breaking change of `data` gets a new type" (CB-1).
pub const IMAGE_PUBLISHED_TYPE: &str = "org.elixir-cloud.tagcast.image.published.v1";

/// The `dataschema` of [`ImagePublished`]: the `ImagePublished` definition
/// inside `schemas/image-published.schema.json`.
pub const IMAGE_PUBLISHED_DATA_SCHEMA: &str =
    "https://elixir-cloud-aai.github.io/tagcast/schemas/v1/image-published.schema.json#/$defs/ImagePublished";

/// "A callback is `POST`ed with `Content-Type: application/cloudevents+json`"
/// (CB-1): the CloudEvents structured mode.
pub const CONTENT_TYPE: &str = "application/cloudevents+json";

/// The event's `datacontenttype` (CB-1).
pub const DATA_CONTENT_TYPE: &str = "application/json";

/// The CloudEvents `specversion` (CB-1).
pub const SPEC_VERSION: &str = "1.0";

/// The pattern of an event id: "1 to 128 characters of `A-Z a-z 0-9 _ -`,
/// unique per broker, the same on every attempt" (CB-1). No `.`, because the
/// id is part of the signed content `id.timestamp.body` (CB-3).
pub const EVENT_ID_PATTERN: &str = "^[A-Za-z0-9_-]{1,128}$";

/// The `data` of an `image.published` callback (CB-2): a tag of the grammar
/// was pushed to a repository that the subscriber subscribed to, and it is an
/// update for the subscriber (TAG-11).
///
/// Every field but `serviceId`, `image`, `tag`, `digest` and `previousTag` is
/// derived; [`ImagePublished::new`] fills them and [`ImagePublished::check`]
/// verifies them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    feature = "schema",
    schemars(
        description = "The `data` of an `org.elixir-cloud.tagcast.image.published.v1` callback (spec/callbacks.md CB-2)."
    )
)]
pub struct ImagePublished {
    /// The `id` of the subscribed service in the registry.
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub service_id: String,
    /// The normalized repository the tag was pushed to (REF-6).
    pub image: Repository,
    /// The tag as pushed (the short form stays short).
    pub tag: Tag,
    /// The digest the tag pointed to when the broker checked it; for a
    /// multi-arch image, the index digest.
    pub digest: Digest,
    /// `image:tag@digest`: what a deployment should run, pinned to the digest.
    pub reference: ImageReference,
    /// The tag's api-version in the canonical three-part form (TAG-6).
    #[serde(with = "canonical_version")]
    #[cfg_attr(
        feature = "schema",
        schemars(
            with = "String",
            regex(pattern = r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
        )
    )]
    pub api_version: ApiVersion,
    /// The tag's stage.
    pub stage: Stage,
    /// The tag's timestamp as an RFC 3339 UTC date-time.
    #[serde(with = "utc_seconds")]
    #[cfg_attr(feature = "schema", schemars(
        with = "String",
        extend("format" = "date-time"),
        regex(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")
    ))]
    pub timestamp: DateTime<Utc>,
    /// The tag the broker last delivered to this subscriber for this image,
    /// if any; always of the same stage and older (CB-15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_tag: Option<Tag>,
}

impl ImagePublished {
    /// The event for `tag` pushed to `image` with `digest`, delivered to
    /// `service_id`, whose last delivered tag was `previous_tag`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tagcast_spec::event::ImagePublished;
    /// use tagcast_spec::{Digest, Repository, Tag};
    ///
    /// let data = ImagePublished::new(
    ///     "org.example.wes",
    ///     Repository::parse("elixircloud/cwl-wes").unwrap(),
    ///     Tag::parse("1.1-production-201108-195630").unwrap(),
    ///     Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap(),
    ///     None,
    /// );
    /// assert_eq!(data.api_version.to_string(), "1.1.0");
    /// assert_eq!(data.timestamp.to_rfc3339(), "2020-11-08T19:56:30+00:00");
    /// assert!(data.reference.to_string().starts_with("docker.io/elixircloud/cwl-wes:1.1-production-201108-195630@sha256:"));
    /// ```
    pub fn new(
        service_id: impl Into<String>,
        image: Repository,
        tag: Tag,
        digest: Digest,
        previous_tag: Option<Tag>,
    ) -> Self {
        let reference = reference_of(&image, &tag, &digest);
        Self {
            service_id: service_id.into(),
            reference,
            api_version: tag.api_version().canonical(),
            stage: tag.stage(),
            timestamp: tag.timestamp().to_datetime(),
            image,
            tag,
            digest,
            previous_tag,
        }
    }

    /// Check that the derived fields agree with `image`, `tag` and `digest`,
    /// and that `previousTag` is older and of the same stage (CB-2, CB-15).
    ///
    /// # Errors
    ///
    /// [`EventError`] naming the first field that disagrees.
    pub fn check(&self) -> Result<(), EventError> {
        let expected = Self::new(
            self.service_id.clone(),
            self.image.clone(),
            self.tag,
            self.digest.clone(),
            self.previous_tag,
        );
        if self.service_id.is_empty() {
            return Err(EventError::EmptyServiceId);
        }
        if self.reference != expected.reference {
            return Err(EventError::Derived {
                field: "reference",
                found: self.reference.to_string(),
                expected: expected.reference.to_string(),
            });
        }
        if self.api_version != expected.api_version {
            return Err(EventError::Derived {
                field: "apiVersion",
                found: self.api_version.to_string(),
                expected: expected.api_version.to_string(),
            });
        }
        if self.stage != expected.stage {
            return Err(EventError::Derived {
                field: "stage",
                found: self.stage.to_string(),
                expected: expected.stage.to_string(),
            });
        }
        if self.timestamp != expected.timestamp {
            return Err(EventError::Derived {
                field: "timestamp",
                found: rfc3339(&self.timestamp),
                expected: rfc3339(&expected.timestamp),
            });
        }
        if let Some(previous) = self.previous_tag {
            if self.tag.channel_cmp(&previous) != Some(Ordering::Greater) {
                return Err(EventError::NotNewer {
                    tag: self.tag,
                    previous,
                });
            }
        }
        Ok(())
    }
}

fn reference_of(image: &Repository, tag: &Tag, digest: &Digest) -> ImageReference {
    ImageReference::parse(&format!("{image}:{tag}@{digest}"))
        .expect("a normalized repository, a tag of the grammar and a digest form a reference")
}

fn rfc3339(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The payload of a [`CloudEvent`]: what the envelope's `type`, `dataschema`
/// and `subject` are for this kind of data.
pub trait EventData: Serialize + DeserializeOwned + SchemaIfEnabled {
    /// The CloudEvents `type`.
    const TYPE: &'static str;
    /// The CloudEvents `dataschema`.
    const DATA_SCHEMA: &'static str;

    /// The CloudEvents `subject` of an event with this data.
    fn subject(&self) -> String;

    /// Check the data's own invariants.
    ///
    /// # Errors
    ///
    /// [`EventError`] naming what is wrong.
    fn check(&self) -> Result<(), EventError>;
}

/// `JsonSchema` when the `schema` feature is on, nothing otherwise: the
/// bound [`EventData`] needs for the callback's schema.
#[cfg(feature = "schema")]
#[doc(hidden)]
pub trait SchemaIfEnabled: JsonSchema {}
#[cfg(feature = "schema")]
impl<T: JsonSchema> SchemaIfEnabled for T {}
/// `JsonSchema` when the `schema` feature is on, nothing otherwise.
#[cfg(not(feature = "schema"))]
#[doc(hidden)]
pub trait SchemaIfEnabled {}
#[cfg(not(feature = "schema"))]
impl<T> SchemaIfEnabled for T {}

impl EventData for ImagePublished {
    const TYPE: &'static str = IMAGE_PUBLISHED_TYPE;
    const DATA_SCHEMA: &'static str = IMAGE_PUBLISHED_DATA_SCHEMA;

    /// "`subject` is the full reference `image:tag@digest`" (CB-1).
    fn subject(&self) -> String {
        self.reference.to_string()
    }

    fn check(&self) -> Result<(), EventError> {
        ImagePublished::check(self)
    }
}

/// A CloudEvents 1.0 event in the structured JSON format (CB-1): every
/// attribute in the body, `data` a JSON value.
///
/// Deserializing checks the envelope against the contract (`specversion`
/// `1.0`, `type` and `dataschema` of `T`, `datacontenttype`
/// `application/json`, the id's pattern, `subject` derived from the data)
/// and the data's own invariants, so a CD endpoint that parses a body into
/// `CloudEvent<ImagePublished>` rejects what the contract forbids (400, CB-9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudEvent<T> {
    /// The event id: "unique per broker, the same on every attempt", equal to
    /// the `webhook-id` header (CB-1, CB-3).
    pub id: String,
    /// The broker's base URL, e.g. `https://registry.example.org/ga4gh/registry/v1`.
    pub source: String,
    /// When the broker created the event.
    pub time: DateTime<Utc>,
    /// The payload.
    pub data: T,
}

impl<T: EventData> CloudEvent<T> {
    /// The event `id` from `source`, created at `time`, carrying `data`;
    /// `type`, `subject`, `datacontenttype` and `dataschema` follow from `T`.
    pub fn new(id: impl Into<String>, source: impl Into<String>, time: DateTime<Utc>, data: T) -> Self {
        Self {
            id: id.into(),
            source: source.into(),
            time,
            data,
        }
    }

    /// The CloudEvents `type`, [`EventData::TYPE`].
    pub fn ty(&self) -> &'static str {
        T::TYPE
    }

    /// The CloudEvents `subject`, [`EventData::subject`].
    pub fn subject(&self) -> String {
        self.data.subject()
    }

    /// Check the id's pattern and the data (CB-1, CB-2).
    ///
    /// # Errors
    ///
    /// [`EventError`] naming what is wrong.
    pub fn check(&self) -> Result<(), EventError> {
        if !is_event_id(&self.id) {
            return Err(EventError::Id { found: self.id.clone() });
        }
        if self.source.is_empty() {
            return Err(EventError::EmptySource);
        }
        self.data.check()
    }
}

fn is_event_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[derive(Serialize)]
struct WireOut<'a, T> {
    specversion: &'static str,
    id: &'a str,
    source: &'a str,
    #[serde(rename = "type")]
    ty: &'static str,
    subject: String,
    time: String,
    datacontenttype: &'static str,
    dataschema: &'static str,
    data: &'a T,
}

#[derive(Deserialize)]
struct WireIn<T> {
    specversion: String,
    id: String,
    source: String,
    #[serde(rename = "type")]
    ty: String,
    subject: String,
    time: DateTime<Utc>,
    datacontenttype: String,
    dataschema: String,
    data: T,
}

impl<T: EventData> Serialize for CloudEvent<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WireOut {
            specversion: SPEC_VERSION,
            id: &self.id,
            source: &self.source,
            ty: T::TYPE,
            subject: self.data.subject(),
            time: rfc3339(&self.time),
            datacontenttype: DATA_CONTENT_TYPE,
            dataschema: T::DATA_SCHEMA,
            data: &self.data,
        }
        .serialize(serializer)
    }
}

impl<'de, T: EventData> Deserialize<'de> for CloudEvent<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireIn::<T>::deserialize(deserializer)?;
        let attribute = |name: &'static str, found: String, expected: &'static str| {
            if found == expected {
                Ok(())
            } else {
                Err(serde::de::Error::custom(EventError::Attribute {
                    name,
                    found,
                    expected,
                }))
            }
        };
        attribute("specversion", wire.specversion, SPEC_VERSION)?;
        attribute("type", wire.ty, T::TYPE)?;
        attribute("datacontenttype", wire.datacontenttype, DATA_CONTENT_TYPE)?;
        attribute("dataschema", wire.dataschema, T::DATA_SCHEMA)?;
        let event = CloudEvent {
            id: wire.id,
            source: wire.source,
            time: wire.time,
            data: wire.data,
        };
        event.check().map_err(serde::de::Error::custom)?;
        let subject = event.data.subject();
        if wire.subject != subject {
            return Err(serde::de::Error::custom(EventError::Derived {
                field: "subject",
                found: wire.subject,
                expected: subject,
            }));
        }
        Ok(event)
    }
}

#[cfg(feature = "schema")]
impl<T: EventData> JsonSchema for CloudEvent<T> {
    fn schema_name() -> Cow<'static, str> {
        format!("CloudEvent_{}", T::schema_name()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut data = generator.subschema_for::<T>();
        data.insert(
            "description".into(),
            "The payload; its schema is `dataschema` (CB-2).".into(),
        );
        json_schema!({
            "type": "object",
            "description": format!(
                "A CloudEvents 1.0 event in structured JSON mode, `POST`ed with `Content-Type: {CONTENT_TYPE}` and signed with Standard Webhooks headers (spec/callbacks.md CB-1, CB-3)."
            ),
            "required": ["specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema", "data"],
            "properties": {
                "specversion": { "const": SPEC_VERSION, "description": "The CloudEvents version." },
                "id": {
                    "type": "string",
                    "pattern": EVENT_ID_PATTERN,
                    "description": "The event id, equal to the `webhook-id` header and the same on every attempt (CB-1, CB-3)."
                },
                "source": {
                    "type": "string",
                    "format": "uri",
                    "minLength": 1,
                    "description": "The broker's base URL."
                },
                "type": { "const": T::TYPE, "description": "The versioned event type." },
                "subject": {
                    "type": "string",
                    "minLength": 1,
                    "description": "The full image reference `image:tag@digest`, equal to `data.reference`."
                },
                "time": {
                    "type": "string",
                    "format": "date-time",
                    "description": "When the broker created the event (RFC 3339)."
                },
                "datacontenttype": { "const": DATA_CONTENT_TYPE, "description": "The media type of `data`." },
                "dataschema": { "const": T::DATA_SCHEMA, "description": "The schema of `data`." },
                "data": data
            }
        })
    }
}

/// An event or its data breaks the contract (CB-1, CB-2, CB-15).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// A context attribute has another value than the contract fixes.
    #[error("invalid event: attribute {name} is {found:?}, it must be {expected:?} (CB-1)")]
    Attribute {
        /// The attribute.
        name: &'static str,
        /// Its value.
        found: String,
        /// What the contract fixes.
        expected: &'static str,
    },
    /// The id does not match [`EVENT_ID_PATTERN`].
    #[error("invalid event: id {found:?} must be 1 to 128 characters of A-Z a-z 0-9 _ - (CB-1)")]
    Id {
        /// The id.
        found: String,
    },
    /// `source` is empty.
    #[error("invalid event: source must not be empty (CB-1)")]
    EmptySource,
    /// `data.serviceId` is empty.
    #[error("invalid event: data.serviceId must not be empty (CB-2)")]
    EmptyServiceId,
    /// A derived field disagrees with what it is derived from.
    #[error("invalid event: {field} is {found:?}, but image, tag and digest make it {expected:?} (CB-2)")]
    Derived {
        /// The field's name as serialized.
        field: &'static str,
        /// Its value.
        found: String,
        /// The derived value.
        expected: String,
    },
    /// `previousTag` is not older than `tag` in the same channel.
    #[error("invalid event: tag {tag} is not newer than previousTag {previous} of the same stage (CB-15)")]
    NotNewer {
        /// The delivered tag.
        tag: Tag,
        /// The previous tag.
        previous: Tag,
    },
}

impl fmt::Display for CloudEvent<ImagePublished> {
    /// One line for logs: type, id and subject.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", IMAGE_PUBLISHED_TYPE, self.id, self.data.reference)
    }
}

#[cfg(feature = "schema")]
pub(crate) fn example_event() -> serde_json::Value {
    let digest = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";
    let event = CloudEvent::new(
        "evt_01JDQ4Z8Y1S0V2W3X4Y5Z6A7B8",
        "https://registry.example.org/ga4gh/registry/v1",
        DateTime::parse_from_rfc3339("2020-11-08T19:57:02Z")
            .expect("a valid time")
            .with_timezone(&Utc),
        ImagePublished::new(
            "org.example.cwl-wes.production",
            Repository::parse("elixircloud/cwl-wes").expect("a valid repository"),
            Tag::parse("1.1.0-production-201108-195630").expect("a valid tag"),
            Digest::parse(digest).expect("a valid digest"),
            Some(Tag::parse("1.1.0-production-201001-120000").expect("a valid tag")),
        ),
    );
    serde_json::to_value(event).expect("an event serializes")
}

mod canonical_version {
    use std::borrow::Cow;

    use serde::{Deserialize, Deserializer, Serializer};

    use crate::ApiVersion;

    pub(super) fn serialize<S: Serializer>(version: &ApiVersion, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&version.canonical())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ApiVersion, D::Error> {
        let s = Cow::<'de, str>::deserialize(deserializer)?;
        let version = ApiVersion::parse(&s).map_err(serde::de::Error::custom)?;
        if version.is_short() {
            return Err(serde::de::Error::custom(format!(
                "invalid apiVersion {s:?}: it must be the canonical three-part form {}",
                version.canonical()
            )));
        }
        Ok(version)
    }
}

mod utc_seconds {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(time: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&time.to_rfc3339_opts(SecondsFormat::Secs, true))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(deserializer)?;
        if !s.ends_with('Z') {
            return Err(serde::de::Error::custom(format!(
                "invalid timestamp {s:?}: it must be an RFC 3339 date-time in UTC ending in Z"
            )));
        }
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| serde::de::Error::custom(format!("invalid timestamp {s:?}: {e}")))
    }
}

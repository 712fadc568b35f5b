//! DynamoDB tables as AWS has them and moto does not: a new table is
//! `CREATING` for a while (DescribeTable says so, and UpdateTimeToLive,
//! UpdateTable and DeleteTable are refused with `ResourceInUseException`
//! meanwhile), and its tags are listed only a while after they were written
//! (ListTagsOfResource is eventually consistent); TTL changes once an hour
//! per table (`ValidationException` for a second change within it). moto
//! makes a table `ACTIVE`, lists its tags and takes TTL changes at once.
//!
//! Each is reported at least once per table, however late the first read
//! comes: on a loaded machine the scaled window can pass before it.

use std::collections::HashMap;
use std::time::Instant;

use serde_json::{Value, json};

use super::call::{Call, error};

/// Until when, and whether a read has been answered so yet.
type Window = (Instant, bool);

#[derive(Debug, Default)]
pub(super) struct Tables {
    /// Table name → still `CREATING` until.
    creating: HashMap<String, Window>,
    /// Table ARN → its tags not listed until.
    tags_hidden: HashMap<String, Window>,
    /// Table name → its TTL may change again from.
    ttl_locked: HashMap<String, Instant>,
}

impl Tables {
    /// A change to a table still being created, or a second TTL change
    /// within the hour, refused as AWS refuses it; and the behaviour met.
    pub(super) fn refusal(&self, call: &Call<'_>, now: Instant) -> Option<(&'static str, super::Reply)> {
        let name = call.body["TableName"].as_str().unwrap_or_default();
        let changes = ["UpdateTimeToLive", "UpdateTable", "DeleteTable"].iter().any(|op| call.is("dynamodb", op));
        if changes && self.creating.get(name).is_some_and(|(until, _)| now < *until) {
            let message = format!("Attempt to change a resource which is still in use: Table is being created: {name}");
            return Some(("dynamodb_in_use", error("dynamodb", 400, "ResourceInUseException", &message)));
        }
        let ttl_locked = self.ttl_locked.get(name).is_some_and(|from| now < *from);
        (call.is("dynamodb", "UpdateTimeToLive") && ttl_locked).then(|| {
            let message = "Time to live has been modified multiple times within a fixed interval";
            ("dynamodb_ttl_interval", error("dynamodb", 400, "ValidationException", message))
        })
    }

    /// Remembers new tables; makes moto's answer say what AWS would say now.
    /// Returns the behaviour met, if the answer was changed.
    pub(super) fn after(
        &mut self,
        call: &Call<'_>,
        answer: &mut Value,
        now: Instant,
        creating_for: std::time::Duration,
        tags_after: std::time::Duration,
        ttl_interval: std::time::Duration,
    ) -> Option<&'static str> {
        let name = call.body["TableName"].as_str().unwrap_or_default().to_owned();
        if call.is("dynamodb", "UpdateTimeToLive") {
            self.ttl_locked.insert(name, now + ttl_interval);
            return None;
        }
        if call.is("dynamodb", "CreateTable") {
            let arn = answer["TableDescription"]["TableArn"].as_str().unwrap_or_default().to_owned();
            answer["TableDescription"]["TableStatus"] = json!("CREATING");
            self.creating.insert(name, (now + creating_for, false));
            self.tags_hidden.insert(arn, (now + tags_after, false));
            return Some("dynamodb_creating");
        }
        if call.is("dynamodb", "DeleteTable") {
            self.creating.remove(&name);
            self.ttl_locked.remove(&name);
            return None;
        }
        if call.is("dynamodb", "DescribeTable")
            && let Some((until, reported)) = self.creating.get_mut(&name)
            && (now < *until || !*reported)
        {
            *reported = true;
            answer["Table"]["TableStatus"] = json!("CREATING");
            return Some("dynamodb_creating");
        }
        let arn = call.body["ResourceArn"].as_str().unwrap_or_default();
        if call.is("dynamodb", "ListTagsOfResource")
            && let Some((until, reported)) = self.tags_hidden.get_mut(arn)
            && (now < *until || !*reported)
        {
            *reported = true;
            answer["Tags"] = json!([]);
            return Some("dynamodb_tags_lag");
        }
        None
    }
}

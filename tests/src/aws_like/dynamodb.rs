//! DynamoDB tables as AWS has them and moto does not: a new table is
//! `CREATING` for a while (DescribeTable says so, and UpdateTimeToLive,
//! UpdateTable and DeleteTable are refused with `ResourceInUseException`
//! meanwhile), and its tags are listed only a while after they were written
//! (ListTagsOfResource is eventually consistent). moto makes a table
//! `ACTIVE` and lists its tags at once.
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
}

impl Tables {
    /// A change to a table still being created, refused as AWS refuses it.
    pub(super) fn refusal(&self, call: &Call<'_>, now: Instant) -> Option<super::Reply> {
        let changes = ["UpdateTimeToLive", "UpdateTable", "DeleteTable"].iter().any(|op| call.is("dynamodb", op));
        let name = call.body["TableName"].as_str().unwrap_or_default();
        let (until, _) = self.creating.get(name)?;
        (changes && now < *until).then(|| {
            let message = format!("Attempt to change a resource which is still in use: Table is being created: {name}");
            error("dynamodb", 400, "ResourceInUseException", &message)
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
    ) -> Option<&'static str> {
        let name = call.body["TableName"].as_str().unwrap_or_default().to_owned();
        if call.is("dynamodb", "CreateTable") {
            let arn = answer["TableDescription"]["TableArn"].as_str().unwrap_or_default().to_owned();
            answer["TableDescription"]["TableStatus"] = json!("CREATING");
            self.creating.insert(name, (now + creating_for, false));
            self.tags_hidden.insert(arn, (now + tags_after, false));
            return Some("dynamodb_creating");
        }
        if call.is("dynamodb", "DeleteTable") {
            self.creating.remove(&name);
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

//! The outbox sender: keeps every code message in memory (newest first) and prints it:
//! an SMS's text, a call's TwiML (as the Twilio adapter would send it), a WhatsApp
//! template's text. For the local run (`GET /_dev/outbox`) and tests; never for real numbers.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::adapters::twilio::twiml;
use crate::domain::Channel;
use crate::ports::{Clock, CodeContent, CodeMessage, CodeSender, DeliveryError, ProviderReceipt};

#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxEntry {
    pub to: String,
    #[serde(serialize_with = "channel_name")]
    pub channel: Channel,
    /// The SMS text, the call's TwiML, or the WhatsApp template's text.
    pub body: String,
    #[serde(serialize_with = "rfc3339_seconds")]
    pub sent_at: DateTime<Utc>,
}

impl std::fmt::Debug for OutboxEntry {
    // Debug output reaches logs: the body holds the code, `to` the whole number.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxEntry").field("sent_at", &self.sent_at).finish_non_exhaustive()
    }
}

pub struct Outbox {
    clock: Arc<dyn Clock>,
    print: bool,
    entries: Mutex<Vec<OutboxEntry>>,
}

impl Outbox {
    /// An outbox that prints each message to standard output when `print` is set.
    pub fn new(clock: Arc<dyn Clock>, print: bool) -> Self {
        Self { clock, print, entries: Mutex::new(Vec::new()) }
    }

    /// Every message sent so far, newest first.
    pub fn list(&self) -> Vec<OutboxEntry> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.iter().rev().cloned().collect()
    }
}

#[async_trait]
impl CodeSender for Outbox {
    async fn send(&self, message: &CodeMessage) -> Result<ProviderReceipt, DeliveryError> {
        let (what, body) = match &message.content {
            CodeContent::Sms { body } => ("SMS", body.clone()),
            CodeContent::Voice(script) => ("voice call (TwiML)", twiml(script)),
            CodeContent::Whatsapp(template) => ("WhatsApp template", template.preview.clone()),
        };
        let entry = OutboxEntry { to: message.to.clone(), channel: message.channel(), body, sent_at: self.clock.now() };
        if self.print {
            println!("[outbox] {what} to {} at {}:\n{}\n", entry.to, entry.sent_at.to_rfc3339(), entry.body);
        }
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).push(entry);
        Ok(ProviderReceipt::default())
    }
}

fn rfc3339_seconds<S: serde::Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn channel_name<S: serde::Serializer>(channel: &Channel, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(channel.as_str())
}

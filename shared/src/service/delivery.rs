//! The delivery loop: each code the provider takes is recorded under a keyed hash of its
//! sid, each signed status callback moves its record forward, and the metrics say per
//! country what was sent, delivered, undelivered, failed and approved.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use super::{OtpService, Unavailable};
use crate::domain::delivery::{DeliveryRecord, DeliveryState, ProviderSid, StatusApplied, StatusReport};
use crate::domain::{Channel, E164Phone, Pepper};
use crate::ports::{DeliveryLog, MetricEvent, Metrics, ProviderReceipt, SecretName};

/// The status callbacks, where they are on (`OTP_STATUS_CALLBACK_URL`).
#[derive(Clone)]
pub struct DeliveryTracking {
    pub log: Arc<dyn DeliveryLog>,
    /// The public URL Twilio posts to, as given to it: what its signature covers.
    pub callback_url: String,
    /// The provider's secret that signs its callbacks (Twilio's auth token).
    pub signing_secret: SecretName,
}

/// Metrics that go nowhere: the default of a service built without any.
pub struct NoMetrics;

impl Metrics for NoMetrics {
    fn emit(&self, _: &MetricEvent<'_>) {}
}

/// Why a status callback was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    /// Status callbacks are off (`OTP_STATUS_CALLBACK_URL` unset): the route is not served.
    #[error("status callbacks are off")]
    NotServed,
    /// The secrets or the delivery records failed.
    #[error("unavailable")]
    Unavailable,
}

impl From<Unavailable> for StatusError {
    fn from(_: Unavailable) -> Self {
        Self::Unavailable
    }
}

/// One status callback as the edge parsed it: whose, and what it says.
#[derive(Debug, Clone)]
pub struct StatusCallback {
    pub sid: ProviderSid,
    pub report: StatusReport,
}

impl OtpService {
    /// With status callbacks recorded in `tracking.log`.
    pub fn with_delivery(mut self, tracking: DeliveryTracking) -> Self {
        self.delivery = Some(tracking);
        self
    }

    /// With the metrics written to `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<dyn Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The URL the status callbacks are signed over, where they are served.
    pub fn status_callback_url(&self) -> Option<&str> {
        self.delivery.as_ref().map(|tracking| tracking.callback_url.as_str())
    }

    /// The key Twilio signs its callbacks with: the auth token (unavailable while the
    /// secrets cannot be read or hold none).
    pub async fn callback_signing_key(&self) -> Result<SecretString, Unavailable> {
        let Some(tracking_secret) = self.delivery.as_ref().map(|tracking| tracking.signing_secret) else {
            return Err(Unavailable);
        };
        let secrets = self.secrets.load().await.map_err(|_| Unavailable)?;
        match secrets.providers.get(tracking_secret) {
            Some(key) => Ok(key.clone()),
            None => {
                tracing::error!(
                    event = "status_callback_unverifiable",
                    "a status callback came, but no Twilio auth token is loaded to check its signature"
                );
                Err(Unavailable)
            }
        }
    }

    /// After the provider took a code: counted, and recorded for its callbacks. A record
    /// that cannot be written costs the callbacks of this message, never the send.
    pub(super) async fn track_sent(
        &self,
        receipt: ProviderReceipt,
        phone: &E164Phone,
        channel: Channel,
        now: DateTime<Utc>,
    ) {
        self.metrics.emit(&MetricEvent::Sent { country: phone.region(), channel });
        let (Some(tracking), Some(sid)) = (&self.delivery, receipt.sid) else { return };
        let Ok(secrets) = self.secrets.load().await else { return };
        let key = Pepper::new(secrets.code_pepper.expose_secret().as_bytes()).message_key(&sid);
        let prefix = phone.prefix(self.settings.guard_prefix_digits);
        let record = DeliveryRecord::sent(phone.region(), &prefix, channel, now);
        if let Err(error) = tracking.log.record_sent(&key, &record).await {
            tracing::warn!(event = "delivery_not_recorded", %error, "the send's delivery record was not written");
        }
    }

    /// Applies a signed status callback: its record moves forward, and a final state is
    /// counted and logged. The answer says what changed; the conversion guard can take
    /// [`StatusApplied::delivery_failure`] from it.
    pub async fn apply_status(&self, callback: &StatusCallback) -> Result<StatusApplied, StatusError> {
        let Some(tracking) = &self.delivery else { return Err(StatusError::NotServed) };
        let secrets = self.secrets.load().await.map_err(|_| StatusError::Unavailable)?;
        let key = Pepper::new(secrets.code_pepper.expose_secret().as_bytes()).message_key(callback.sid.as_str());
        let now = self.clock.now();
        let applied = tracking.log.apply_status(&key, &callback.report, now).await.map_err(|error| {
            tracing::error!(%error, "delivery records unavailable");
            StatusError::Unavailable
        })?;
        if let StatusApplied::Advanced { from, record } = &applied {
            tracing::info!(
                event = "delivery_status",
                country = record.country,
                channel = record.channel.as_str(),
                from = from.as_str(),
                state = record.state.as_str(),
                error_code = record.error_code,
                "delivery status moved"
            );
            if record.state.is_final() {
                self.metrics.emit(&MetricEvent::Final {
                    country: &record.country,
                    channel: record.channel,
                    state: record.state,
                    latency: applied.delivery_latency(),
                });
            }
            if let Some(failure) = applied.delivery_failure() {
                // Within the code's life, the next resend could offer another channel (the
                // modal); until it does, this line and the metric say so.
                let within_code_life = now - failure.sent_at < self.settings.policy.code_ttl;
                tracing::warn!(
                    event =
                        if failure.state == DeliveryState::Failed { "delivery_failed" } else { "delivery_undelivered" },
                    country = failure.country,
                    prefix = failure.prefix,
                    channel = failure.channel.as_str(),
                    error_code = failure.error_code,
                    within_code_life,
                    carrier_problem = failure.is_carrier_problem(),
                    "the code did not reach the phone"
                );
                // A carrier problem is not an attack: the guard leaves the SMS out of its
                // prefix's sends (docs/SECURITY.md, "Delivery status and the guard").
                if failure.is_carrier_problem()
                    && self.settings.policy.guard.is_some()
                    && let Err(error) = self.store.count_undelivered(&failure.prefix, failure.sent_at, now).await
                {
                    tracing::warn!(event = "undelivered_not_counted", %error, "the guard's tally missed an undelivered SMS");
                }
            }
        }
        Ok(applied)
    }
}

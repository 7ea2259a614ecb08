//! The metrics as CloudWatch embedded metric format lines: one JSON object per event on
//! standard output, which Lambda's log stream turns into metrics (no API call, no new
//! dependency). Each line counts for its country (`Country`) and for the whole service
//! (`Service`: what the delivery-rate alarm reads); no line holds a number or a sid.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::domain::delivery::DeliveryState;
use crate::ports::{Clock, MetricEvent, Metrics};

/// The CloudWatch namespace of the metrics unless the settings name another
/// (`OTP_METRICS_NAMESPACE`; template.yaml: `OtpService/<stack>`, which its dashboard and
/// alarm read).
pub use crate::config::DEFAULT_METRICS_NAMESPACE as NAMESPACE;
/// The `Service` dimension's one value.
pub const SERVICE: &str = "otp";

/// Where the lines go.
type Sink = Box<dyn Fn(&str) + Send + Sync>;

/// Writes each event as one EMF line.
pub struct Emf {
    clock: Arc<dyn Clock>,
    namespace: String,
    sink: Sink,
}

impl Emf {
    /// To standard output: Lambda's log stream, the local run's terminal.
    pub fn stdout(clock: Arc<dyn Clock>, namespace: &str) -> Self {
        Self { clock, namespace: namespace.to_owned(), sink: Box::new(|line| println!("{line}")) }
    }

    /// Into a list that the caller reads (tests).
    pub fn recording(clock: Arc<dyn Clock>) -> (Self, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let kept = lines.clone();
        let sink = Box::new(move |line: &str| kept.lock().unwrap_or_else(|e| e.into_inner()).push(line.to_owned()));
        (Self { clock, namespace: NAMESPACE.to_owned(), sink }, lines)
    }
}

impl Metrics for Emf {
    fn emit(&self, event: &MetricEvent<'_>) {
        let line = emf_line(&self.namespace, event, self.clock.now().timestamp_millis());
        (self.sink)(&line.to_string());
    }
}

/// The metric names of a final state.
fn final_metric(state: DeliveryState) -> &'static str {
    match state {
        DeliveryState::Delivered => "Delivered",
        DeliveryState::Undelivered => "Undelivered",
        // Queued and sent are never final; counted as failed should one ever be passed.
        DeliveryState::Failed | DeliveryState::Queued | DeliveryState::Sent => "Failed",
    }
}

/// The EMF document of `event` at `timestamp_ms`, in `namespace`.
pub fn emf_line(namespace: &str, event: &MetricEvent<'_>, timestamp_ms: i64) -> Value {
    let (country, channel, mut metrics) = match event {
        MetricEvent::Sent { country, channel } => (*country, *channel, vec![("Sent", "Count", json!(1))]),
        MetricEvent::Approved { country, channel } => (*country, *channel, vec![("Approved", "Count", json!(1))]),
        MetricEvent::Final { country, channel, state, latency } => {
            let mut metrics = vec![(final_metric(*state), "Count", json!(1))];
            if let Some(latency) = latency {
                metrics.push(("DeliveryLatency", "Milliseconds", json!(latency.num_milliseconds())));
            }
            (*country, *channel, metrics)
        }
    };
    let definitions: Vec<Value> = metrics.iter().map(|(name, unit, _)| json!({ "Name": name, "Unit": unit })).collect();
    let mut document = json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["Country"], ["Service"]],
                "Metrics": definitions,
            }],
        },
        "Country": country,
        "Service": SERVICE,
        "Channel": channel.as_str(),
    });
    for (name, _, value) in metrics.drain(..) {
        document[name] = value;
    }
    document
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Channel;

    #[test]
    fn each_event_is_one_emf_document_per_country_and_for_the_service() {
        let sent = emf_line(NAMESPACE, &MetricEvent::Sent { country: "BR", channel: Channel::Sms }, 1_800_000_000_000);
        assert_eq!(sent["_aws"]["Timestamp"], 1_800_000_000_000_i64);
        let directive = &sent["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["Country"], ["Service"]]));
        assert_eq!(directive["Metrics"], json!([{ "Name": "Sent", "Unit": "Count" }]));
        assert_eq!((&sent["Country"], &sent["Service"], &sent["Sent"]), (&json!("BR"), &json!("otp"), &json!(1)));
        let delivered = emf_line(
            "OtpService/prod",
            &MetricEvent::Final {
                country: "IN",
                channel: Channel::Whatsapp,
                state: DeliveryState::Delivered,
                latency: Some(chrono::TimeDelta::milliseconds(4200)),
            },
            0,
        );
        assert_eq!(
            delivered["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            json!([{ "Name": "Delivered", "Unit": "Count" }, { "Name": "DeliveryLatency", "Unit": "Milliseconds" }])
        );
        assert_eq!((&delivered["Delivered"], &delivered["DeliveryLatency"]), (&json!(1), &json!(4200)));
        assert_eq!(delivered["_aws"]["CloudWatchMetrics"][0]["Namespace"], "OtpService/prod");
        assert_eq!(delivered["Channel"], "whatsapp");
        for (state, name) in [(DeliveryState::Undelivered, "Undelivered"), (DeliveryState::Failed, "Failed")] {
            let line = emf_line(
                NAMESPACE,
                &MetricEvent::Final { country: "US", channel: Channel::Voice, state, latency: None },
                0,
            );
            assert_eq!(line[name], 1, "{line}");
            assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().map(Vec::len), Some(1));
        }
        let approved = emf_line(NAMESPACE, &MetricEvent::Approved { country: "001", channel: Channel::Sms }, 0);
        assert_eq!((&approved["Approved"], &approved["Country"]), (&json!(1), &json!("001")));
    }
}

//! What a test logs, captured in the Lambda JSON format, for tests that read the logs.

use std::sync::{Arc, Mutex};

/// A writer that keeps everything logged.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'w self) -> Self::Writer {
        self.clone()
    }
}

/// Captures what this thread logs (in the Lambda JSON format, at `filter`) until the guard
/// drops.
pub fn capture_logs(filter: &str) -> (LogBuffer, tracing::subscriber::DefaultGuard) {
    let buffer = LogBuffer::default();
    let subscriber = otp_core::telemetry::json_subscriber(tracing_subscriber::EnvFilter::new(filter), buffer.clone());
    let guard = tracing::subscriber::set_default(subscriber);
    (buffer, guard)
}

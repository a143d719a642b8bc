//! Messages to eCaptureQ clients: each encoded once as a protobuf
//! `LogEntry` and fanned out by the hub.

use std::sync::Arc;

use super::Output;
use crate::ecaptureq::hub::Hub;
use crate::ecaptureq::proto;
use crate::event::Message;
use crate::format::Render;

pub struct ToEcaptureQ {
    pub hub: Arc<Hub>,
    /// `--ecaptureq-payload text`: the payload is this rendering of the message.
    pub render: Option<Render>,
}

impl Output for ToEcaptureQ {
    fn message(&mut self, m: &Message) {
        match &self.render {
            None => self.hub.broadcast_event(proto::event_entry(m)),
            Some(render) => {
                let mut text = Vec::with_capacity(m.payload.len() + 256);
                let _ = render.write_body(&mut text, m);
                self.hub.broadcast_event(proto::event_entry_with_payload(m, &text));
            }
        }
    }

    /// Caught up: wake the clients (once per batch, not per message).
    fn flush(&mut self) {
        self.hub.wake();
    }
}

//! Messages rendered to a `--eventaddr` sink (file, tcp://, ws://): one
//! record per message.

use super::Output;
use crate::event::Message;
use crate::format::Render;
use crate::sink::SinkSender;

pub struct ToSink {
    pub render: Render,
    pub sink: SinkSender,
}

impl Output for ToSink {
    fn message(&mut self, m: &Message) {
        let mut rec = Vec::with_capacity(m.payload.len() + 256);
        // Rendering into a Vec cannot fail.
        let _ = self.render.write(&mut rec, m);
        self.sink.send(rec);
    }
}

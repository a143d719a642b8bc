// Automatically generated rust module for 'ecaptureq.proto' file

#![allow(non_snake_case)]
#![allow(non_upper_case_globals)]
#![allow(non_camel_case_types)]
#![allow(unused_imports)]
#![allow(unknown_lints)]
#![allow(clippy::all)]
#![cfg_attr(rustfmt, rustfmt_skip)]


use std::borrow::Cow;
use quick_protobuf::{MessageInfo, MessageRead, MessageWrite, BytesReader, Writer, WriterBackend, Result};
use quick_protobuf::sizeofs::*;
use super::*;

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum LogType {
    LOG_TYPE_HEARTBEAT = 0,
    LOG_TYPE_PROCESS_LOG = 1,
    LOG_TYPE_EVENT = 2,
}

impl Default for LogType {
    fn default() -> Self {
        LogType::LOG_TYPE_HEARTBEAT
    }
}

impl From<i32> for LogType {
    fn from(i: i32) -> Self {
        match i {
            0 => LogType::LOG_TYPE_HEARTBEAT,
            1 => LogType::LOG_TYPE_PROCESS_LOG,
            2 => LogType::LOG_TYPE_EVENT,
            _ => Self::default(),
        }
    }
}

impl<'a> From<&'a str> for LogType {
    fn from(s: &'a str) -> Self {
        match s {
            "LOG_TYPE_HEARTBEAT" => LogType::LOG_TYPE_HEARTBEAT,
            "LOG_TYPE_PROCESS_LOG" => LogType::LOG_TYPE_PROCESS_LOG,
            "LOG_TYPE_EVENT" => LogType::LOG_TYPE_EVENT,
            _ => Self::default(),
        }
    }
}

#[allow(clippy::derive_partial_eq_without_eq)]
#[derive(Debug, Default, PartialEq, Clone)]
pub struct Event<'a> {
    pub timestamp: i64,
    pub uuid: Cow<'a, str>,
    pub src_ip: Cow<'a, str>,
    pub src_port: u32,
    pub dst_ip: Cow<'a, str>,
    pub dst_port: u32,
    pub pid: i64,
    pub pname: Cow<'a, str>,
    pub type_pb: u32,
    pub length: u32,
    pub payload: Cow<'a, [u8]>,
}

impl<'a> MessageRead<'a> for Event<'a> {
    fn from_reader(r: &mut BytesReader, bytes: &'a [u8]) -> Result<Self> {
        let mut msg = Self::default();
        while !r.is_eof() {
            match r.next_tag(bytes) {
                Ok(8) => msg.timestamp = r.read_int64(bytes)?,
                Ok(18) => msg.uuid = r.read_string(bytes).map(Cow::Borrowed)?,
                Ok(26) => msg.src_ip = r.read_string(bytes).map(Cow::Borrowed)?,
                Ok(32) => msg.src_port = r.read_uint32(bytes)?,
                Ok(42) => msg.dst_ip = r.read_string(bytes).map(Cow::Borrowed)?,
                Ok(48) => msg.dst_port = r.read_uint32(bytes)?,
                Ok(56) => msg.pid = r.read_int64(bytes)?,
                Ok(66) => msg.pname = r.read_string(bytes).map(Cow::Borrowed)?,
                Ok(72) => msg.type_pb = r.read_uint32(bytes)?,
                Ok(80) => msg.length = r.read_uint32(bytes)?,
                Ok(90) => msg.payload = r.read_bytes(bytes).map(Cow::Borrowed)?,
                Ok(t) => { r.read_unknown(bytes, t)?; }
                Err(e) => return Err(e),
            }
        }
        Ok(msg)
    }
}

impl<'a> MessageWrite for Event<'a> {
    fn get_size(&self) -> usize {
        0
        + if self.timestamp == 0i64 { 0 } else { 1 + sizeof_varint(*(&self.timestamp) as u64) }
        + if self.uuid == "" { 0 } else { 1 + sizeof_len((&self.uuid).len()) }
        + if self.src_ip == "" { 0 } else { 1 + sizeof_len((&self.src_ip).len()) }
        + if self.src_port == 0u32 { 0 } else { 1 + sizeof_varint(*(&self.src_port) as u64) }
        + if self.dst_ip == "" { 0 } else { 1 + sizeof_len((&self.dst_ip).len()) }
        + if self.dst_port == 0u32 { 0 } else { 1 + sizeof_varint(*(&self.dst_port) as u64) }
        + if self.pid == 0i64 { 0 } else { 1 + sizeof_varint(*(&self.pid) as u64) }
        + if self.pname == "" { 0 } else { 1 + sizeof_len((&self.pname).len()) }
        + if self.type_pb == 0u32 { 0 } else { 1 + sizeof_varint(*(&self.type_pb) as u64) }
        + if self.length == 0u32 { 0 } else { 1 + sizeof_varint(*(&self.length) as u64) }
        + if self.payload == Cow::Borrowed(b"") { 0 } else { 1 + sizeof_len((&self.payload).len()) }
    }

    fn write_message<W: WriterBackend>(&self, w: &mut Writer<W>) -> Result<()> {
        if self.timestamp != 0i64 { w.write_with_tag(8, |w| w.write_int64(*&self.timestamp))?; }
        if self.uuid != "" { w.write_with_tag(18, |w| w.write_string(&**&self.uuid))?; }
        if self.src_ip != "" { w.write_with_tag(26, |w| w.write_string(&**&self.src_ip))?; }
        if self.src_port != 0u32 { w.write_with_tag(32, |w| w.write_uint32(*&self.src_port))?; }
        if self.dst_ip != "" { w.write_with_tag(42, |w| w.write_string(&**&self.dst_ip))?; }
        if self.dst_port != 0u32 { w.write_with_tag(48, |w| w.write_uint32(*&self.dst_port))?; }
        if self.pid != 0i64 { w.write_with_tag(56, |w| w.write_int64(*&self.pid))?; }
        if self.pname != "" { w.write_with_tag(66, |w| w.write_string(&**&self.pname))?; }
        if self.type_pb != 0u32 { w.write_with_tag(72, |w| w.write_uint32(*&self.type_pb))?; }
        if self.length != 0u32 { w.write_with_tag(80, |w| w.write_uint32(*&self.length))?; }
        if self.payload != Cow::Borrowed(b"") { w.write_with_tag(90, |w| w.write_bytes(&**&self.payload))?; }
        Ok(())
    }
}

#[allow(clippy::derive_partial_eq_without_eq)]
#[derive(Debug, Default, PartialEq, Clone)]
pub struct Heartbeat<'a> {
    pub timestamp: i64,
    pub count: i64,
    pub message: Cow<'a, str>,
}

impl<'a> MessageRead<'a> for Heartbeat<'a> {
    fn from_reader(r: &mut BytesReader, bytes: &'a [u8]) -> Result<Self> {
        let mut msg = Self::default();
        while !r.is_eof() {
            match r.next_tag(bytes) {
                Ok(8) => msg.timestamp = r.read_int64(bytes)?,
                Ok(16) => msg.count = r.read_int64(bytes)?,
                Ok(26) => msg.message = r.read_string(bytes).map(Cow::Borrowed)?,
                Ok(t) => { r.read_unknown(bytes, t)?; }
                Err(e) => return Err(e),
            }
        }
        Ok(msg)
    }
}

impl<'a> MessageWrite for Heartbeat<'a> {
    fn get_size(&self) -> usize {
        0
        + if self.timestamp == 0i64 { 0 } else { 1 + sizeof_varint(*(&self.timestamp) as u64) }
        + if self.count == 0i64 { 0 } else { 1 + sizeof_varint(*(&self.count) as u64) }
        + if self.message == "" { 0 } else { 1 + sizeof_len((&self.message).len()) }
    }

    fn write_message<W: WriterBackend>(&self, w: &mut Writer<W>) -> Result<()> {
        if self.timestamp != 0i64 { w.write_with_tag(8, |w| w.write_int64(*&self.timestamp))?; }
        if self.count != 0i64 { w.write_with_tag(16, |w| w.write_int64(*&self.count))?; }
        if self.message != "" { w.write_with_tag(26, |w| w.write_string(&**&self.message))?; }
        Ok(())
    }
}

#[allow(clippy::derive_partial_eq_without_eq)]
#[derive(Debug, Default, PartialEq, Clone)]
pub struct LogEntry<'a> {
    pub log_type: event::LogType,
    pub payload: event::mod_LogEntry::OneOfpayload<'a>,
}

impl<'a> MessageRead<'a> for LogEntry<'a> {
    fn from_reader(r: &mut BytesReader, bytes: &'a [u8]) -> Result<Self> {
        let mut msg = Self::default();
        while !r.is_eof() {
            match r.next_tag(bytes) {
                Ok(8) => msg.log_type = r.read_enum(bytes)?,
                Ok(18) => msg.payload = event::mod_LogEntry::OneOfpayload::event_payload(r.read_message::<event::Event>(bytes)?),
                Ok(26) => msg.payload = event::mod_LogEntry::OneOfpayload::heartbeat_payload(r.read_message::<event::Heartbeat>(bytes)?),
                Ok(34) => msg.payload = event::mod_LogEntry::OneOfpayload::run_log(r.read_string(bytes).map(Cow::Borrowed)?),
                Ok(t) => { r.read_unknown(bytes, t)?; }
                Err(e) => return Err(e),
            }
        }
        Ok(msg)
    }
}

impl<'a> MessageWrite for LogEntry<'a> {
    fn get_size(&self) -> usize {
        0
        + if self.log_type == event::LogType::LOG_TYPE_HEARTBEAT { 0 } else { 1 + sizeof_varint(*(&self.log_type) as u64) }
        + match self.payload {
            event::mod_LogEntry::OneOfpayload::event_payload(ref m) => 1 + sizeof_len((m).get_size()),
            event::mod_LogEntry::OneOfpayload::heartbeat_payload(ref m) => 1 + sizeof_len((m).get_size()),
            event::mod_LogEntry::OneOfpayload::run_log(ref m) => 1 + sizeof_len((m).len()),
            event::mod_LogEntry::OneOfpayload::None => 0,
    }    }

    fn write_message<W: WriterBackend>(&self, w: &mut Writer<W>) -> Result<()> {
        if self.log_type != event::LogType::LOG_TYPE_HEARTBEAT { w.write_with_tag(8, |w| w.write_enum(*&self.log_type as i32))?; }
        match self.payload {            event::mod_LogEntry::OneOfpayload::event_payload(ref m) => { w.write_with_tag(18, |w| w.write_message(m))? },
            event::mod_LogEntry::OneOfpayload::heartbeat_payload(ref m) => { w.write_with_tag(26, |w| w.write_message(m))? },
            event::mod_LogEntry::OneOfpayload::run_log(ref m) => { w.write_with_tag(34, |w| w.write_string(&**m))? },
            event::mod_LogEntry::OneOfpayload::None => {},
    }        Ok(())
    }
}

pub mod mod_LogEntry {

use super::*;

#[derive(Debug, PartialEq, Clone)]
pub enum OneOfpayload<'a> {
    event_payload(event::Event<'a>),
    heartbeat_payload(event::Heartbeat<'a>),
    run_log(Cow<'a, str>),
    None,
}

impl<'a> Default for OneOfpayload<'a> {
    fn default() -> Self {
        OneOfpayload::None
    }
}

}


//! Admin calls rdkafka has no wrapper for, made through librdkafka's C API. This is the only
//! module with `unsafe` code; [`incremental_alter_topic_configs`] is its safe surface.
//!
//! Every native object is owned by a guard that destroys it on every path out, so an error
//! or a timeout leaks nothing.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::client::{Client, ClientContext};
use rdkafka::types::RDKafkaErrorCode;

/// Why an incremental config change failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AlterFailure {
    /// librdkafka's or the broker's error code.
    pub(crate) code: RDKafkaErrorCode,
    /// Its message.
    pub(crate) message: String,
}

fn failure(code: RDKafkaErrorCode, message: impl Into<String>) -> AlterFailure {
    AlterFailure {
        code,
        message: message.into(),
    }
}

/// Reads a C string librdkafka owns (empty when null).
///
/// # Safety
/// `ptr` is null or a NUL-terminated string that outlives this call.
unsafe fn text(ptr: *const c_char) -> String {
    if ptr.is_null() {
        String::new()
    } else {
        // SAFETY: the caller guarantees a live NUL-terminated string.
        unsafe { CStr::from_ptr(ptr) }
            .to_string_lossy()
            .into_owned()
    }
}

struct Options(*mut rd::rd_kafka_AdminOptions_t);
impl Drop for Options {
    fn drop(&mut self) {
        // SAFETY: created by rd_kafka_AdminOptions_new, destroyed once.
        unsafe { rd::rd_kafka_AdminOptions_destroy(self.0) }
    }
}

struct Resource(*mut rd::rd_kafka_ConfigResource_t);
impl Drop for Resource {
    fn drop(&mut self) {
        // SAFETY: created by rd_kafka_ConfigResource_new, destroyed once (librdkafka copies
        // the resources it is given, so the caller keeps ownership).
        unsafe { rd::rd_kafka_ConfigResource_destroy(self.0) }
    }
}

struct Queue(*mut rd::rd_kafka_queue_t);
impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: created by rd_kafka_queue_new, destroyed once.
        unsafe { rd::rd_kafka_queue_destroy(self.0) }
    }
}

struct Event(*mut rd::rd_kafka_event_t);
impl Drop for Event {
    fn drop(&mut self) {
        // SAFETY: returned by rd_kafka_queue_poll, destroyed once.
        unsafe { rd::rd_kafka_event_destroy(self.0) }
    }
}

/// Sets `configs` on `topic` with IncrementalAlterConfigs (only the named keys change; the
/// legacy AlterConfigs would reset every other key). Blocks for at most about `timeout`.
pub(crate) fn incremental_alter_topic_configs<C: ClientContext>(
    client: &Client<C>,
    topic: &str,
    configs: &[(String, String)],
    timeout: Duration,
) -> Result<(), AlterFailure> {
    let invalid = |what: &str| {
        failure(
            RDKafkaErrorCode::InvalidConfig,
            format!("{what} contains a NUL byte"),
        )
    };
    let name = CString::new(topic).map_err(|_| invalid("the topic name"))?;
    let entries = configs
        .iter()
        .map(|(k, v)| Ok((CString::new(k.as_str())?, CString::new(v.as_str())?)))
        .collect::<Result<Vec<_>, std::ffi::NulError>>()
        .map_err(|_| invalid("a config key or value"))?;
    let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    let rk = client.native_ptr();
    // SAFETY: `rk` is the live client handle `client` owns; `name` and `entries` live until
    // the end of this function, the guards until the calls that use them are done.
    unsafe {
        let options = alter_options(rk, timeout_ms)?;
        let resource = topic_resource(&name, &entries)?;
        let queue = Queue(rd::rd_kafka_queue_new(rk));
        let mut resources = [resource.0];
        rd::rd_kafka_IncrementalAlterConfigs(rk, resources.as_mut_ptr(), 1, options.0, queue.0);
        alter_result(&queue, timeout_ms)
    }
}

/// The request's options: IncrementalAlterConfigs, timing out after `timeout_ms`.
///
/// # Safety
/// `rk` is a live client handle.
unsafe fn alter_options(rk: *mut rd::rd_kafka_t, timeout_ms: i32) -> Result<Options, AlterFailure> {
    // SAFETY: `rk` is live (the caller's promise); `errstr` outlives the call writing it.
    unsafe {
        let options = Options(rd::rd_kafka_AdminOptions_new(
            rk,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_INCREMENTALALTERCONFIGS,
        ));
        let mut errstr = [0 as c_char; 512];
        let err = rd::rd_kafka_AdminOptions_set_request_timeout(
            options.0,
            timeout_ms,
            errstr.as_mut_ptr(),
            errstr.len(),
        );
        if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            return Err(failure(err.into(), text(errstr.as_ptr())));
        }
        Ok(options)
    }
}

/// The topic `name` with each of `entries` to set.
///
/// # Safety
/// The returned resource points into `name`, which must outlive it.
unsafe fn topic_resource(
    name: &CString,
    entries: &[(CString, CString)],
) -> Result<Resource, AlterFailure> {
    // SAFETY: every pointer passed is a CString the caller keeps alive; an error returned by
    // librdkafka is read and destroyed once.
    unsafe {
        let resource = Resource(rd::rd_kafka_ConfigResource_new(
            rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
            name.as_ptr(),
        ));
        for (key, value) in entries {
            let error = rd::rd_kafka_ConfigResource_add_incremental_config(
                resource.0,
                key.as_ptr(),
                rd::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_SET,
                value.as_ptr(),
            );
            if !error.is_null() {
                let message = text(rd::rd_kafka_error_string(error));
                rd::rd_kafka_error_destroy(error);
                return Err(failure(RDKafkaErrorCode::InvalidConfig, message));
            }
        }
        Ok(resource)
    }
}

/// Waits on `queue` for the request's result: the first error of the request or of its
/// resource, if any.
///
/// # Safety
/// `queue` is the queue the request was sent with.
unsafe fn alter_result(queue: &Queue, timeout_ms: i32) -> Result<(), AlterFailure> {
    // SAFETY: the event polled is owned by its guard; the result and its resources belong to
    // the event and are read while it lives.
    unsafe {
        // The request times out on its own after `timeout`; allow a little more for the
        // result event to arrive.
        let event = rd::rd_kafka_queue_poll(queue.0, timeout_ms.saturating_add(1000));
        if event.is_null() {
            return Err(failure(
                RDKafkaErrorCode::OperationTimedOut,
                "no answer from the broker in time",
            ));
        }
        let event = Event(event);
        let err = rd::rd_kafka_event_error(event.0);
        if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            return Err(failure(
                err.into(),
                text(rd::rd_kafka_event_error_string(event.0)),
            ));
        }
        let result = rd::rd_kafka_event_IncrementalAlterConfigs_result(event.0);
        if result.is_null() {
            return Err(failure(
                RDKafkaErrorCode::Fail,
                "unexpected event from librdkafka",
            ));
        }
        let mut count = 0usize;
        let list = rd::rd_kafka_IncrementalAlterConfigs_result_resources(result, &mut count);
        for i in 0..count {
            let resource = *list.add(i);
            let err = rd::rd_kafka_ConfigResource_error(resource);
            if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                return Err(failure(
                    err.into(),
                    text(rd::rd_kafka_ConfigResource_error_string(resource)),
                ));
            }
        }
        Ok(())
    }
}

//! A fault-injecting HTTP proxy between the AWS SDK and an AWS API emulator (`moto_server`),
//! for testing what a real cloud does to a client: latency on every call, a response lost
//! after the request was carried out, a connection closed before it was, requests that still
//! land after their client died, and eventual consistency (a new object invisible to describes
//! for a while; an instance profile that `RunInstances` does not know yet).
//!
//! Every request is carried out in a task of its own, so a client that goes away (killed, or
//! timed out) does not stop a request the proxy has received: it reaches the emulator anyway,
//! as it would reach AWS. The proxy speaks the query protocol of EC2 and IAM (form-encoded
//! `Action=…` bodies), which is all the AWS provider uses.

// Functions read in one screen (`clippy.toml` sets the length); a table of cases may not.
#![warn(clippy::too_many_lines)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use regex::Regex;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What happens to a request picked by [`FaultProxy::inject`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The request is carried out, then the connection is closed without its response.
    LoseResponse,
    /// The connection is closed before the request is carried out.
    CloseConnection,
    /// EC2 answers with this error code (HTTP 400), carrying nothing out: the object the
    /// request names is gone (`InvalidVpcID.NotFound`), say.
    Answer(&'static str),
}

/// AWS's eventual consistency, as the proxy emulates it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Consistency {
    /// For this long after a create, describes do not show the new object: by its id they
    /// answer `…NotFound`, by a filter (its tags, its VPC) they find nothing.
    pub invisible_after_create: Duration,
    /// For this long after an instance profile is created or given its role, `RunInstances`
    /// naming it fails with AWS's `Invalid IAM Instance Profile name`.
    pub instance_profile_propagation: Duration,
}

/// The proxy, serving on 127.0.0.1 until dropped.
pub struct FaultProxy {
    url: String,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("url", &self.url)
            .finish()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:5000`) on a free port of 127.0.0.1.
    pub async fn start(upstream: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            rules: Mutex::new(Rules::default()),
            patterns: Patterns::new(),
        });
        let serving = Arc::clone(&shared);
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = Arc::clone(&serving);
                tokio::spawn(async move {
                    let service = service_fn(move |request| handle(Arc::clone(&shared), request));
                    // A connection ends with an error when the proxy drops a response on
                    // purpose, or when the client goes away: nothing to report either way.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            url,
            shared,
            server,
        })
    }

    /// The proxy's URL, for `AWS_ENDPOINT_URL`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every request waits a random time in `min..=max` before it is carried out.
    pub fn set_latency(&self, min: Duration, max: Duration) {
        self.shared.rules().latency = (min, max.max(min));
    }

    /// Emulates eventual consistency from now on.
    pub fn set_consistency(&self, consistency: Consistency) {
        self.shared.rules().consistency = consistency;
    }

    /// The next `times` requests of `action` (`CreateVpc`) meet `fault`.
    pub fn inject(&self, action: &str, fault: Fault, times: usize) {
        let mut rules = self.shared.rules();
        let planned = rules.faults.entry(action.to_owned()).or_default();
        planned.extend(std::iter::repeat_n(fault, times));
    }

    /// Faults injected that no request has met yet.
    pub fn faults_left(&self) -> usize {
        self.shared.rules().faults.values().map(Vec::len).sum()
    }

    /// The action of every request so far, in arrival order.
    pub fn actions(&self) -> Vec<String> {
        self.shared.rules().seen.clone()
    }

    /// How many requests of `action` arrived.
    pub fn count(&self, action: &str) -> usize {
        self.shared
            .rules()
            .seen
            .iter()
            .filter(|a| a.as_str() == action)
            .count()
    }
}

#[derive(Default)]
struct Rules {
    latency: (Duration, Duration),
    consistency: Consistency,
    faults: HashMap<String, Vec<Fault>>,
    /// Actions in arrival order.
    seen: Vec<String>,
    /// Objects describes do not show yet.
    invisible: Vec<Invisible>,
    /// Instance profiles `RunInstances` does not know yet.
    propagating: Vec<(String, Instant)>,
}

/// A created object that describes do not show until `until`.
struct Invisible {
    until: Instant,
    ids: Vec<String>,
    /// The values of its tags (`iac:stack`, `iac:resource`, `Name`), which find it by filter.
    tag_values: Vec<String>,
}

struct Shared {
    upstream: String,
    client: Client<HttpConnector, Full<Bytes>>,
    rules: Mutex<Rules>,
    patterns: Patterns,
}

impl Shared {
    fn rules(&self) -> MutexGuard<'_, Rules> {
        // A panic while the lock was held leaves plain data behind: keep using it.
        self.rules.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The element of a create's response that holds the new object's id.
const CREATED_IDS: &[(&str, &str)] = &[
    ("CreateVpc", "vpcId"),
    ("CreateSubnet", "subnetId"),
    ("CreateInternetGateway", "internetGatewayId"),
    ("CreateRouteTable", "routeTableId"),
    ("CreateSecurityGroup", "groupId"),
    ("RunInstances", "instanceId"),
    ("AllocateAddress", "allocationId"),
    ("ImportKeyPair", "keyPairId"),
];

struct Patterns {
    ids: Vec<(&'static str, Regex)>,
}

impl Patterns {
    fn new() -> Self {
        Self {
            ids: CREATED_IDS
                .iter()
                .filter_map(|(action, element)| {
                    Regex::new(&format!("<{element}>([^<]+)</{element}>"))
                        .ok()
                        .map(|re| (*action, re))
                })
                .collect(),
        }
    }

    fn created_ids(&self, action: &str, body: &str) -> Vec<String> {
        self.ids
            .iter()
            .filter(|(a, _)| *a == action)
            .flat_map(|(_, re)| re.captures_iter(body))
            .filter_map(|c| c.get(1).map(|m| m.as_str().to_owned()))
            .collect()
    }
}

/// What the proxy does with one request, decided when it arrives.
enum Verdict {
    Forward {
        latency: Duration,
        fault: Option<Fault>,
    },
    Answer(Response<Full<Bytes>>),
}

async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ProxyError> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|_| ProxyError("the client went away mid-request"))?
        .to_bytes();
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let action = form
        .iter()
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let verdict = decide(&shared, &action, &form);
    let (latency, fault) = match verdict {
        Verdict::Answer(response) => return Ok(response),
        Verdict::Forward { latency, fault } => (latency, fault),
    };
    match fault {
        Some(Fault::CloseConnection) => {
            return Err(ProxyError("connection closed before forwarding"));
        }
        Some(Fault::Answer(code)) => {
            return Ok(ec2_error(code, "answered by the fault-injecting proxy"));
        }
        _ => {}
    }
    // Carried out in a task of its own: it completes even if this client goes away.
    let forwarding = tokio::spawn(async move {
        tokio::time::sleep(latency).await;
        let response = forward(&shared, parts, body).await?;
        if response.status() == StatusCode::OK {
            remember_create(&shared, &action, &form, &response);
        }
        Ok::<_, ProxyError>(response)
    });
    let response = forwarding
        .await
        .map_err(|_| ProxyError("the forwarding task failed"))??;
    match fault {
        Some(Fault::LoseResponse) => Err(ProxyError("response dropped")),
        _ => Ok(response.into_response()),
    }
}

fn decide(shared: &Shared, action: &str, form: &[(String, String)]) -> Verdict {
    let mut rules = shared.rules();
    rules.seen.push(action.to_owned());
    let now = Instant::now();
    rules.invisible.retain(|i| i.until > now);
    rules.propagating.retain(|(_, until)| *until > now);
    if action.starts_with("Describe") {
        let value_is = |wanted: &str| form.iter().any(|(_, v)| v == wanted);
        for invisible in &rules.invisible {
            let by_filter = form.iter().any(|(k, _)| k.starts_with("Filter"));
            if let Some(id) = invisible.ids.iter().find(|id| value_is(id)) {
                return Verdict::Answer(if by_filter {
                    empty_result(action)
                } else {
                    not_found(id)
                });
            }
            if by_filter && invisible.tag_values.iter().any(|t| value_is(t)) {
                return Verdict::Answer(empty_result(action));
            }
        }
    }
    if action == "RunInstances"
        && let Some((_, profile)) = form.iter().find(|(k, _)| k == "IamInstanceProfile.Name")
        && rules.propagating.iter().any(|(name, _)| name == profile)
    {
        return Verdict::Answer(ec2_error(
            "InvalidParameterValue",
            &format!(
                "Value ({profile}) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name"
            ),
        ));
    }
    let fault = rules
        .faults
        .get_mut(action)
        .and_then(|planned| (!planned.is_empty()).then(|| planned.remove(0)));
    let (min, max) = rules.latency;
    let latency = if max > min {
        min + (max - min).mul_f64(rand::random::<f64>())
    } else {
        min
    };
    Verdict::Forward { latency, fault }
}

/// Records a successful create so that describes miss it for a while.
fn remember_create(shared: &Shared, action: &str, form: &[(String, String)], response: &Forwarded) {
    let mut rules = shared.rules();
    let consistency = rules.consistency;
    let now = Instant::now();
    if matches!(action, "CreateInstanceProfile" | "AddRoleToInstanceProfile")
        && !consistency.instance_profile_propagation.is_zero()
        && let Some((_, name)) = form.iter().find(|(k, _)| k == "InstanceProfileName")
    {
        rules
            .propagating
            .push((name.clone(), now + consistency.instance_profile_propagation));
    }
    if consistency.invisible_after_create.is_zero() {
        return;
    }
    let ids = shared
        .patterns
        .created_ids(action, &String::from_utf8_lossy(&response.body));
    if ids.is_empty() {
        return;
    }
    let tag_values = form
        .iter()
        .filter(|(k, _)| k.starts_with("TagSpecification") && k.ends_with(".Value"))
        .map(|(_, v)| v.clone())
        .chain(
            form.iter()
                .filter(|(k, _)| k == "KeyName")
                .map(|(_, v)| v.clone()),
        )
        .collect();
    rules.invisible.push(Invisible {
        until: now + consistency.invisible_after_create,
        ids,
        tag_values,
    });
}

/// An upstream response, read whole.
struct Forwarded {
    status: StatusCode,
    headers: hyper::HeaderMap,
    body: Bytes,
}

impl Forwarded {
    fn status(&self) -> StatusCode {
        self.status
    }

    fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(self.body));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        response
    }
}

async fn forward(
    shared: &Shared,
    parts: hyper::http::request::Parts,
    body: Bytes,
) -> Result<Forwarded, ProxyError> {
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let uri: hyper::Uri = format!("{}{path}", shared.upstream)
        .parse()
        .map_err(|_| ProxyError("bad upstream URI"))?;
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = parts.method;
    *request.uri_mut() = uri;
    *request.headers_mut() = parts.headers;
    let response = shared
        .client
        .request(request)
        .await
        .map_err(|_| ProxyError("the emulator did not answer"))?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|_| ProxyError("the emulator's answer broke off"))?
        .to_bytes();
    let mut headers = parts.headers;
    headers.remove(hyper::header::TRANSFER_ENCODING);
    Ok(Forwarded {
        status: parts.status,
        headers,
        body,
    })
}

/// EC2's answer to a describe that found nothing (every list absent).
fn empty_result(action: &str) -> Response<Full<Bytes>> {
    xml(
        StatusCode::OK,
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><{action}Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>fault-proxy</requestId></{action}Response>"#
        ),
    )
}

/// EC2's answer to a describe of an id it does not know (yet).
fn not_found(id: &str) -> Response<Full<Bytes>> {
    let code = match id.split('-').next().unwrap_or_default() {
        "vpc" => "InvalidVpcID.NotFound",
        "subnet" => "InvalidSubnetID.NotFound",
        "igw" => "InvalidInternetGatewayID.NotFound",
        "rtb" => "InvalidRouteTableID.NotFound",
        "sg" => "InvalidGroup.NotFound",
        "i" => "InvalidInstanceID.NotFound",
        "eipalloc" => "InvalidAllocationID.NotFound",
        _ => "InvalidKeyPair.NotFound",
    };
    ec2_error(code, &format!("The ID '{id}' does not exist"))
}

fn ec2_error(code: &str, message: &str) -> Response<Full<Bytes>> {
    xml(
        StatusCode::BAD_REQUEST,
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>"#
        ),
    )
}

fn xml(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/xml;charset=UTF-8"),
    );
    response
}

/// Why the proxy closed a connection without an answer.
#[derive(Debug)]
struct ProxyError(&'static str);

impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for ProxyError {}

//! Bytes from an http(s) URL, for `POST /files {"url": …}`, behind a guard against
//! server-side request forgery: a URL whose host resolves to a loopback, private, link-local,
//! shared, multicast or otherwise special address (the cloud metadata service's 169.254.169.254
//! among them) is refused unless its host is listed in `files.allowed_url_hosts`. The checked
//! addresses are the ones connected to (no second lookup an attacker's DNS could answer
//! differently), and every redirect is checked again.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures_util::StreamExt;
use url::{Host, Url};

use super::{ByteStream, StorageError};

const MAX_REDIRECTS: usize = 5;

/// What may be fetched, and how long a fetch may wait.
#[derive(Debug, Clone)]
pub struct UrlPolicy {
    /// Hosts allowed even though they resolve to special addresses (names or IP literals, as
    /// written in URLs).
    pub allowed_hosts: Vec<String>,
    /// Connecting, and each wait for more bytes.
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL is not one Sluice fetches (scheme, or where its host leads).
    #[error("{0}")]
    NotAllowed(String),
    /// The server could not be reached, or answered with an error.
    #[error("{0}")]
    Failed(String),
}

/// An answer whose body is still to be read.
pub struct Fetched {
    pub body: ByteStream,
    /// `Content-Length`, when the server said.
    pub length: Option<u64>,
    /// A file name: the answer's `Content-Disposition`, else the URL path's last segment.
    pub name: Option<String>,
}

fn v4_is_public(a: Ipv4Addr) -> bool {
    let [first, second, ..] = a.octets();
    !(a.is_private()
        || a.is_loopback()
        || a.is_link_local()
        || a.is_unspecified()
        || a.is_broadcast()
        || a.is_multicast()
        || a.is_documentation()
        || first == 0
        || (first == 100 && (64..128).contains(&second)) // shared address space
        || (first == 198 && (18..20).contains(&second)) // benchmarking
        || first >= 240) // reserved
}

/// Whether an address is on the public internet (what a URL may lead to without being listed).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => v4_is_public(a),
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return v4_is_public(v4);
            }
            let first = a.segments()[0];
            let nat64 = a.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
            if nat64 {
                let [.., c, d] = a.segments();
                return v4_is_public(Ipv4Addr::from(((c as u32) << 16) | d as u32));
            }
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first & 0xffc0) == 0xfec0 // site-local
                || (first == 0x2001 && a.segments()[1] == 0xdb8)) // documentation
        }
    }
}

fn parse(text: &str) -> Result<Url, FetchError> {
    let url = Url::parse(text.trim())
        .map_err(|e| FetchError::NotAllowed(format!("{text:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FetchError::NotAllowed(format!(
            "only http and https URLs are fetched, not {}:",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FetchError::NotAllowed(
            "URLs with credentials in them are not fetched".into(),
        ));
    }
    Ok(url)
}

/// The addresses `url` leads to, all of them allowed; an error names the first that is not.
async fn resolve(url: &Url, policy: &UrlPolicy) -> Result<Vec<SocketAddr>, FetchError> {
    let host = url
        .host()
        .ok_or_else(|| FetchError::NotAllowed(format!("{url} has no host")))?;
    let port = url.port_or_known_default().unwrap_or(80);
    let name = match &host {
        Host::Domain(d) => d.to_ascii_lowercase(),
        Host::Ipv4(a) => a.to_string(),
        Host::Ipv6(a) => a.to_string(),
    };
    let listed = policy.allowed_hosts.iter().any(|h| {
        let h = h.trim().trim_start_matches('[').trim_end_matches(']');
        h.eq_ignore_ascii_case(&name)
    });
    let addresses: Vec<SocketAddr> = match host {
        Host::Ipv4(a) => vec![SocketAddr::new(IpAddr::V4(a), port)],
        Host::Ipv6(a) => vec![SocketAddr::new(IpAddr::V6(a), port)],
        Host::Domain(d) => tokio::time::timeout(policy.timeout, tokio::net::lookup_host((d, port)))
            .await
            .map_err(|_| FetchError::Failed(format!("looking up {name} took too long")))?
            .map_err(|e| FetchError::Failed(format!("cannot look up {name}: {e}")))?
            .collect(),
    };
    if addresses.is_empty() {
        return Err(FetchError::Failed(format!("{name} has no address")));
    }
    if !listed {
        if let Some(blocked) = addresses.iter().find(|a| !is_public(a.ip())) {
            return Err(FetchError::NotAllowed(format!(
                "{name} leads to {}, a private, loopback, link-local or otherwise special \
                 address; list the host in files.allowed_url_hosts to allow it",
                blocked.ip()
            )));
        }
    }
    Ok(addresses)
}

fn failed(url: &Url, e: reqwest::Error) -> FetchError {
    let why = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        e.to_string()
    };
    FetchError::Failed(format!("fetching {url}: {why}"))
}

fn file_name(response: &reqwest::Response, url: &Url) -> Option<String> {
    let disposition = response
        .headers()
        .get(reqwest::header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(';')
                .filter_map(|p| p.trim().strip_prefix("filename="))
                .map(|n| n.trim_matches('"').to_string())
                .next()
        });
    disposition.or_else(|| {
        url.path_segments()?
            .next_back()
            .filter(|s| !s.is_empty())
            .map(percent_decode)
    })
}

fn percent_decode(segment: &str) -> String {
    url::form_urlencoded::parse(format!("n={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| segment.to_string())
}

/// Open `url` for reading, following at most five redirects, each checked as the first.
pub async fn fetch(text: &str, policy: &UrlPolicy) -> Result<Fetched, FetchError> {
    let mut url = parse(text)?;
    for _ in 0..=MAX_REDIRECTS {
        let addresses = resolve(&url, policy).await?;
        let mut client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(policy.timeout)
            .read_timeout(policy.timeout);
        if let Some(Host::Domain(domain)) = url.host() {
            client = client.resolve_to_addrs(domain, &addresses);
        }
        let client = client
            .build()
            .map_err(|e| FetchError::Failed(format!("cannot make an HTTP client: {e}")))?;
        let response = client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| failed(&url, e))?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| FetchError::Failed(format!("{url} redirects nowhere ({status})")))?;
            let next = url
                .join(location)
                .map_err(|e| FetchError::Failed(format!("{url} redirects to {location:?}: {e}")))?;
            url = parse(next.as_str())?;
            continue;
        }
        if !status.is_success() {
            return Err(FetchError::Failed(format!("{url} answered {status}")));
        }
        let length = response.content_length();
        let name = file_name(&response, &url);
        let body = response
            .bytes_stream()
            .map(|item| item.map_err(|e| StorageError::Body(e.to_string())));
        return Ok(Fetched {
            body: Box::pin(body),
            length,
            name,
        });
    }
    Err(FetchError::Failed(format!(
        "{text} redirects more than {MAX_REDIRECTS} times"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_link_local_and_metadata_addresses_are_not_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "8.8.8.8",
            "151.101.1.69",
            "2606:4700::1111",
            "64:ff9b::808:808",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn a_url_to_a_special_address_is_refused_unless_its_host_is_listed() {
        let policy = UrlPolicy {
            allowed_hosts: vec!["127.0.0.1".into()],
            timeout: Duration::from_secs(5),
        };
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]:9/x",
            "http://localhost:9/x",
            "http://10.0.0.1/x",
        ] {
            let err = resolve(&parse(url).unwrap(), &policy).await.unwrap_err();
            assert!(matches!(err, FetchError::NotAllowed(_)), "{url}: {err}");
        }
        assert!(resolve(&parse("http://127.0.0.1:9/x").unwrap(), &policy)
            .await
            .is_ok());
        for url in [
            "file:///etc/passwd",
            "ftp://example.com/x",
            "http://u:p@example.com/",
        ] {
            assert!(
                matches!(parse(url), Err(FetchError::NotAllowed(_))),
                "{url}"
            );
        }
    }
}

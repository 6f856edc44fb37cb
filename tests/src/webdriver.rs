//! A small W3C WebDriver client for the console's browser tests: it drives
//! Debian's `chromedriver` (headless `chromium`) over plain HTTP/1.1 on
//! loopback. Only what the tests use: sessions, navigation, elements,
//! script, window size and screenshots.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The browser and its driver, if this machine has them: `CHROMIUM` and
/// `CHROMEDRIVER`, else `/usr/bin/chromium` and `/usr/bin/chromedriver`.
pub fn available() -> Option<(PathBuf, PathBuf)> {
    let pick = |var: &str, default: &str| {
        std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
    };
    let browser = pick("CHROMIUM", "/usr/bin/chromium");
    let driver = pick("CHROMEDRIVER", "/usr/bin/chromedriver");
    (browser.exists() && driver.exists()).then_some((browser, driver))
}

/// A raw HTTP/1.1 exchange: status, headers (lower-case names) and body.
pub async fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> std::io::Result<(u16, Vec<(String, String)>, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        let _ = write!(request, "{k}: {v}\r\n");
    }
    let body = body.unwrap_or("");
    if method != "GET" {
        let _ = write!(
            request,
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await?;
    // Some servers keep the connection open despite `Connection: close`: read
    // what Content-Length (or the last chunk) says, not to the end.
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if complete(&raw) {
            break;
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Ok((status, headers, body))
}

/// Whether `raw` holds a whole response.
fn complete(raw: &[u8]) -> bool {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let body = raw.len() - end - 4;
    if let Some(len) = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        return body >= len;
    }
    if head.contains("transfer-encoding: chunked") {
        return raw.ends_with(b"0\r\n\r\n");
    }
    false
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Decodes standard base64 (screenshots).
pub fn base64(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for v in s.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// A running chromedriver and one headless browser session.
pub struct Browser {
    driver: Child,
    addr: String,
    session: String,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless session.
    pub async fn start(browser: &Path, driver: &Path) -> anyhow::Result<Self> {
        let port = crate::free_ports(1)[0];
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let addr = format!("127.0.0.1:{port}");
        let mut b = Self {
            driver: child,
            addr,
            session: String::new(),
        };
        let ready = crate::eventually(Duration::from_secs(20), || async {
            http(&b.addr, "GET", "/status", &[], None)
                .await
                .is_ok_and(|(s, _, _)| s == 200)
        })
        .await;
        anyhow::ensure!(ready, "chromedriver did not start");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": browser,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,900",
                         "--lang=en-GB", "--no-first-run"]
            }
        }}});
        let v = b.call("POST", "/session", Some(caps)).await?;
        v["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("no session: {v}"))?
            .clone_into(&mut b.session);
        Ok(b)
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let body = body.map(|b| b.to_string());
        let (status, _, text) = tokio::time::timeout(
            Duration::from_secs(60),
            http(&self.addr, method, path, &[], body.as_deref()),
        )
        .await??;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("webdriver answered {status} {text:?}: {e}"))?;
        anyhow::ensure!(status == 200, "webdriver {method} {path}: {status} {v}");
        Ok(v["value"].clone())
    }

    fn at(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.call("POST", &self.at("/url"), Some(json!({"url": url})))
            .await
            .map(drop)
    }

    pub async fn url(&self) -> anyhow::Result<String> {
        Ok(self
            .call("GET", &self.at("/url"), None)
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    pub async fn source(&self) -> anyhow::Result<String> {
        Ok(self
            .call("GET", &self.at("/source"), None)
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// The first element matching a CSS selector.
    pub async fn find(&self, css: &str) -> anyhow::Result<String> {
        let v = self
            .call(
                "POST",
                &self.at("/element"),
                Some(json!({"using": "css selector", "value": css})),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{css}: {e}"))?;
        v[ELEMENT]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("no element {css}"))
    }

    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        let el = self.find(css).await?;
        self.call(
            "POST",
            &self.at(&format!("/element/{el}/click")),
            Some(json!({})),
        )
        .await
        .map(drop)
    }

    pub async fn type_into(&self, css: &str, text: &str) -> anyhow::Result<()> {
        let el = self.find(css).await?;
        self.call(
            "POST",
            &self.at(&format!("/element/{el}/value")),
            Some(json!({"text": text})),
        )
        .await
        .map(drop)
    }

    pub async fn text(&self, css: &str) -> anyhow::Result<String> {
        let el = self.find(css).await?;
        Ok(self
            .call("GET", &self.at(&format!("/element/{el}/text")), None)
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Runs an asynchronous script; it calls its last argument with the result.
    pub async fn script_async(&self, script: &str) -> anyhow::Result<Value> {
        self.call(
            "POST",
            &self.at("/execute/async"),
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    pub async fn script(&self, script: &str) -> anyhow::Result<Value> {
        self.call(
            "POST",
            &self.at("/execute/sync"),
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Waits until the page source contains `text`.
    pub async fn wait_for(&self, text: &str, within: Duration) -> anyhow::Result<()> {
        let found = crate::eventually(within, || async {
            self.source().await.is_ok_and(|s| s.contains(text))
        })
        .await;
        anyhow::ensure!(
            found,
            "the page never showed {text:?}: {}",
            self.source().await.unwrap_or_default()
        );
        Ok(())
    }

    /// A PNG of the whole page (the window grown to the page's height).
    pub async fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let height = self
            .script("return Math.max(document.documentElement.scrollHeight, document.body.scrollHeight);")
            .await?
            .as_u64()
            .unwrap_or(900)
            .clamp(600, 6000);
        self.call(
            "POST",
            &self.at("/window/rect"),
            Some(json!({"width": 1280, "height": height + 140})),
        )
        .await?;
        let png = self.call("GET", &self.at("/screenshot"), None).await?;
        let bytes = base64(png.as_str().unwrap_or_default());
        anyhow::ensure!(bytes.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        std::fs::write(path, bytes)?;
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let addr = self.addr.clone();
            let path = format!("/session/{}", self.session);
            // Best effort: the driver's exit below ends the browser anyway.
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    let _ = rt.block_on(http(&addr, "DELETE", &path, &[], None));
                }
            })
            .join();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

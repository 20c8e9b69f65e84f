//! Reading a device's `/metrics` from outside, as Prometheus does: an HTTP/1 GET (hyper's
//! client) and the text exposition format parsed by `prometheus-parse`. `tandem soak --faults`
//! measures recovery times with it ([`crate::faults::recovery`]).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::faults::DeviceSample;

/// Longest wait for one scrape (connect, request, whole body).
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET http://addr/metrics`, the body as text.
pub async fn get_metrics(addr: SocketAddr) -> anyhow::Result<String> {
    let fetch = async {
        let stream = TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.context("HTTP handshake")?;
        let conn = tokio::spawn(conn);
        let req = hyper::Request::get("/metrics")
            .header(hyper::header::HOST, addr.to_string())
            .body(http_body_util::Empty::<bytes::Bytes>::new())?;
        let resp = sender.send_request(req).await.context("GET /metrics")?;
        anyhow::ensure!(resp.status() == hyper::StatusCode::OK, "GET /metrics: {}", resp.status());
        let body = resp.into_body().collect().await.context("reading /metrics")?.to_bytes();
        drop(sender);
        // The connection ends once the sender is gone; its result says nothing more.
        let _ = conn.await;
        String::from_utf8(body.to_vec()).context("/metrics is not UTF-8")
    };
    tokio::time::timeout(SCRAPE_TIMEOUT, fetch)
        .await
        .map_err(|_| anyhow::anyhow!("GET http://{addr}/metrics took over {SCRAPE_TIMEOUT:?}"))?
}

/// The figures recovery is judged on, from a device's `/metrics` text scraped at `t_s`.
pub fn device_sample(text: &str, t_s: f64) -> anyhow::Result<DeviceSample> {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .context("parsing the device's /metrics")?;
    let value = |metric: &str, label: Option<(&str, &str)>| -> anyhow::Result<u64> {
        let s = scrape
            .samples
            .iter()
            .find(|s| s.metric == metric && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .with_context(|| format!("no {metric}{label:?} in the device's /metrics"))?;
        match s.value {
            // Counters hold whole numbers far below 2^53: exact in f64.
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) if v >= 0.0 => Ok(v as u64),
            ref other => anyhow::bail!("{metric} is not a counter: {other:?}"),
        }
    };
    Ok(DeviceSample {
        t_s,
        edge_results: value("tandem_results_total", Some(("origin", "edge")))?,
        connects: value("tandem_link_connects_total", None)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Encoder, Registry, TextEncoder};
    use tandem_actors::metrics::DeviceMetrics;
    use tandem_actors::types::Origin;

    /// The device's own registry, encoded as its endpoint encodes it.
    #[test]
    fn reads_edge_results_and_connects_from_the_devices_real_metrics() {
        let registry = Registry::new();
        let m = DeviceMetrics::register(&registry).unwrap();
        for _ in 0..7 {
            m.result(Origin::Edge);
        }
        m.result(Origin::Local);
        m.connects.inc_by(3);
        let mut text = Vec::new();
        TextEncoder::new().encode(&registry.gather(), &mut text).unwrap();
        let s = device_sample(std::str::from_utf8(&text).unwrap(), 1.5).unwrap();
        assert_eq!(s, DeviceSample { t_s: 1.5, edge_results: 7, connects: 3 });
        assert!(device_sample("# nothing here\n", 0.0).is_err(), "missing metrics are an error, not zero");
    }
}

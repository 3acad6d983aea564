//! TLS: a real run through a TLS-terminating proxy on 127.0.0.1 whose
//! certificate is self-signed (tests/fixtures/tls). Without `--insecure` every
//! wss/https connection fails certificate verification (and is reported as
//! such); with it the chat turns, the token request, the runtime WebSocket and
//! the webhook all work, a warning is printed and the manifest records it.

use crate::common;

use common::*;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::rustls;

const LIMIT: Duration = Duration::from_secs(60);

/// Accepts TLS on an ephemeral port and pipes each connection to `backend`.
/// Lives as long as the test process (a daemon thread with its own runtime).
fn tls_proxy(backend: SocketAddr) -> SocketAddr {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(repo_path("tests/fixtures/tls/cert.pem"))
        .expect("read cert.pem")
        .collect::<Result<Vec<_>, _>>()
        .expect("parse cert.pem");
    let key = PrivateKeyDer::from_pem_file(repo_path("tests/fixtures/tls/key.pem")).expect("key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that rejects our certificate ends the handshake here.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut upstream) = tokio::net::TcpStream::connect(backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
                });
            }
        });
    });
    addr
}

fn scenario(proxy: SocketAddr) -> String {
    format!(
        "name: tls\n\
         target: {{url: \"https://{proxy}\", reconnect: {{max_attempts: 0}}}}\n\
         runtime:\n  url: \"wss://{proxy}/v2/runtime\"\n  reconnect: {{max_attempts: 0}}\n  \
         oauth: {{token_url: \"https://{proxy}/oauth/token\", client_id: finalping, client_secret: \"${{env:FINALPING_TEST_CLIENT_SECRET}}\"}}\n\
         webhook: {{url: \"https://{proxy}/webhook\"}}\n\
         load: {{vus: 2, iterations: 3}}\n\
         steps:\n  - connect\n  - send: {{text: hi, timeout: 5s}}\n  - update_context: {{scope: session, vars: {{n: 1}}}}\n  - disconnect\n"
    )
}

fn run(
    w: &Workdir,
    proxy: SocketAddr,
    extra: &[&str],
) -> (std::process::Output, serde_json::Value) {
    let p = w.file("s.yaml", &scenario(proxy));
    let out_dir = w.path(&format!("r{}", extra.len()));
    let mut args = vec![
        "run".to_string(),
        p.to_string_lossy().into_owned(),
        "--out".into(),
        out_dir.to_string_lossy().into_owned(),
        "--quiet".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env = [("FINALPING_TEST_CLIENT_SECRET", "finalping-secret")];
    let out = run_finalping_env(&args, &env, LIMIT);
    (out, read_json(&out_dir.join("summary.json")))
}

fn backend_addr(served: &Served) -> SocketAddr {
    served
        .url
        .trim_start_matches("http://")
        .parse()
        .expect("serve URL is host:port")
}

#[test]
fn self_signed_certificate_is_refused_by_default() {
    let served = serve(&[]);
    let proxy = tls_proxy(backend_addr(&served));
    let w = Workdir::new();
    let (out, s) = run(&w, proxy, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(counter(&s, "connects_ok"), 0, "{s}");
    assert_eq!(s["errors"]["connect_tls"].as_u64(), Some(6), "{s}");
    assert_eq!(counter(&s, "turns_sent"), 0);
    assert!(!text(&out).contains("--insecure: TLS certificates are NOT verified"));
}

#[test]
fn insecure_accepts_it_with_a_warning() {
    let served = serve(&[]);
    let proxy = tls_proxy(backend_addr(&served));
    let w = Workdir::new();
    let (out, s) = run(&w, proxy, &["--insecure"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(counter(&s, "turns_ok"), 6, "{s}");
    assert_eq!(counter(&s, "updates_ok"), 6, "{s}");
    assert_eq!(counter(&s, "audit_records"), 6, "{s}");
    assert_eq!(
        s["context"]["audit"]["webhook_sent"].as_u64(),
        Some(6),
        "{s}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: --insecure: TLS certificates are NOT verified"),
        "{stderr}"
    );
    let manifest = read_json(&w.path("r1").join("manifest.json"));
    assert_eq!(manifest["tls_insecure"], true, "{manifest}");
}

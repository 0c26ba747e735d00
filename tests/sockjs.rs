//! SockJS on every route, against the real gateway, with raw HTTP: each Comet transport
//! opens and carries messages both ways as the protocol says, errors are the protocol's,
//! SockJS and WebSocket clients share rooms, and origins are checked.

mod common;

use common::http_stream::{Stream, post, rand_u16, session};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn xhr_polling_opens_echoes_in_one_frame_and_is_not_cached() {
    let gw = TestGateway::start(&[]).await;
    let s = session();
    assert_eq!(
        post(gw.main, &format!("{s}/xhr"), "").await,
        (200, "o\n".into())
    );
    for m in ["a", "b\u{2028}", "c\"d"] {
        let body = serde_json::to_string(&[m]).unwrap();
        assert_eq!(post(gw.main, &format!("{s}/xhr_send"), &body).await.0, 204);
    }
    let stream = Stream::open(gw.main, "POST", &format!("{s}/xhr"), b"").await;
    assert_eq!(
        stream.head.header("cache-control"),
        Some("no-store, no-cache, no-transform, must-revalidate, max-age=0")
    );
    assert_eq!(stream.body().await, "a[\"a\",\"b\\u2028\",\"c\\\"d\"]\n");
}

#[tokio::test]
async fn xhr_streaming_sends_the_prelude_then_each_frame_as_it_comes() {
    let gw = TestGateway::start(&[]).await;
    let s = session();
    let mut stream = Stream::open(gw.main, "POST", &format!("{s}/xhr_streaming"), b"").await;
    assert_eq!(stream.head.header("x-accel-buffering"), Some("no"));
    assert_eq!(
        stream.chunk().await.unwrap(),
        format!("{}\n", "h".repeat(2048))
    );
    assert_eq!(stream.chunk().await.unwrap(), "o\n");
    for i in 0..3 {
        let body = format!("[\"m{i}\"]");
        assert_eq!(post(gw.main, &format!("{s}/xhr_send"), &body).await.0, 204);
        assert_eq!(stream.chunk().await.unwrap(), format!("a[\"m{i}\"]\n"));
    }
}

#[tokio::test]
async fn eventsource_htmlfile_and_jsonp_wrap_frames_their_way() {
    let gw = TestGateway::start(&[]).await;
    let s = session();
    let mut es = Stream::open(gw.main, "GET", &format!("{s}/eventsource"), b"").await;
    assert_eq!(es.head.header("content-type"), Some("text/event-stream"));
    assert_eq!(es.chunk().await.unwrap(), "\r\n");
    assert_eq!(es.chunk().await.unwrap(), "data: o\r\n\r\n");
    post(gw.main, &format!("{s}/xhr_send"), "[\"x\"]").await;
    assert_eq!(es.chunk().await.unwrap(), "data: a[\"x\"]\r\n\r\n");

    let s = session();
    let mut page = Stream::open(gw.main, "GET", &format!("{s}/htmlfile?c=cb"), b"").await;
    let head = page.chunk().await.unwrap();
    assert!(
        head.len() > 1024 && head.contains("var c = parent.cb;"),
        "{head}"
    );
    assert_eq!(
        page.chunk().await.unwrap(),
        "<script>\np(\"o\");\n</script>\r\n"
    );
    post(gw.main, &format!("{s}/xhr_send"), "[\"</script>\"]").await;
    let frame = page.chunk().await.unwrap();
    assert_eq!(
        frame.matches("</script>").count(),
        1,
        "a message cannot end the script: {frame}"
    );

    let s = session();
    let get = |q: &str| {
        let target = format!("{s}/jsonp?{q}");
        async move { Stream::open(gw.main, "GET", &target, b"").await }
    };
    assert_eq!(get("c=f").await.body().await, "/**/f(\"o\");\r\n");
    let sent = Stream::open_from(
        "127.0.0.1",
        gw.main,
        "POST",
        &format!("{s}/jsonp_send"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"d=%5B%22y%22%5D",
    )
    .await;
    assert_eq!(sent.head.status, 200);
    assert_eq!(
        get("c=f").await.body().await,
        "/**/f(\"a[\\\"y\\\"]\");\r\n"
    );
    for (query, error) in [
        ("", "\"callback\" parameter required"),
        ("c=a(", "invalid \"callback\" parameter"),
    ] {
        let res = get(query).await;
        assert_eq!(res.head.status, 500);
        assert!(res.body().await.contains(error));
    }
}

#[tokio::test]
async fn errors_are_the_protocols_and_a_body_too_large_leaves_the_session_unharmed() {
    let gw = TestGateway::start(&["--max-message-size", "1000"]).await;
    let s = session();
    post(gw.main, &format!("{s}/xhr"), "").await;
    let send = |body: String| {
        let target = format!("{s}/xhr_send");
        async move { post(gw.main, &target, &body).await }
    };
    let (status, text) = send("[\"x".into()).await;
    assert_eq!(
        (status, text.contains("Broken JSON encoding.")),
        (500, true)
    );
    let (status, text) = send(String::new()).await;
    assert_eq!((status, text.contains("Payload expected.")), (500, true));
    let (status, _) = send(format!("[\"{}\"]", "x".repeat(2000))).await;
    assert_eq!(status, 413);
    assert_eq!(send("[\"fine\"]".into()).await.0, 204);
    assert_eq!(
        post(gw.main, &format!("{s}/xhr"), "").await.1,
        "a[\"fine\"]\n"
    );
    // A room name that is not one is refused, and no session opens.
    assert_eq!(post(gw.main, "/chat/1/zz/xhr?room=a%2fb", "").await.0, 403);
    assert_eq!(post(gw.main, "/chat/1/zz/xhr_send", "[\"x\"]").await.0, 404);
    // Unknown sessions, and paths that are not the protocol's.
    assert_eq!(
        post(gw.main, "/echo/000/nobody/xhr_send", "[\"x\"]")
            .await
            .0,
        404
    );
    for bad in ["/echo/a./a/xhr", "/echo//a/xhr", "/echo/a/a/nope"] {
        assert_eq!(post(gw.main, bad, "").await.0, 404, "{bad}");
    }
}

#[tokio::test]
async fn sockjs_and_websocket_members_share_a_room_in_order() {
    let gw = TestGateway::start(&[]).await;
    let mut ws = gw.ws("/chat").await;
    let s = format!("/chat/1/{}", rand_u16() + 5000);
    let mut stream = Stream::open(gw.main, "POST", &format!("{s}/xhr_streaming"), b"").await;
    stream.chunk().await;
    assert_eq!(stream.chunk().await.unwrap(), "o\n");
    for i in 0..5 {
        post(gw.main, &format!("{s}/xhr_send"), &format!("[\"s{i}\"]")).await;
        send_text(&mut ws, &format!("w{i}")).await;
    }
    let mut seen_ws = Vec::new();
    while seen_ws.len() < 10 {
        seen_ws.push(next_message(&mut ws).await.into_text().unwrap().to_string());
    }
    let mut seen_sockjs = Vec::new();
    while seen_sockjs.len() < 10 {
        let frame = stream.chunk().await.unwrap();
        let items: Vec<String> =
            serde_json::from_str(frame.trim_end().strip_prefix('a').unwrap()).unwrap();
        seen_sockjs.extend(items);
    }
    assert_eq!(seen_ws, seen_sockjs, "one order for every member");
    for i in 0..5 {
        let (s_at, w_at) = (
            seen_ws.iter().position(|m| *m == format!("s{i}")).unwrap(),
            seen_ws.iter().position(|m| *m == format!("w{i}")).unwrap(),
        );
        assert!(
            i == 0
                || s_at
                    > seen_ws
                        .iter()
                        .position(|m| *m == format!("s{}", i - 1))
                        .unwrap()
        );
        assert!(
            i == 0
                || w_at
                    > seen_ws
                        .iter()
                        .position(|m| *m == format!("w{}", i - 1))
                        .unwrap()
        );
    }
}

#[tokio::test]
async fn http_1_0_streams_end_by_closing_the_connection() {
    let gw = TestGateway::start(&[]).await;
    let s = session();
    let mut tcp = TcpStream::connect(gw.main).await.unwrap();
    let request = format!("POST {s}/xhr_streaming HTTP/1.0\r\nHost: x\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    within("prelude and open frame", async {
        while !String::from_utf8_lossy(&got).ends_with("o\n") {
            let mut buf = [0u8; 4096];
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    let text = String::from_utf8_lossy(&got).into_owned();
    let head = text.split("\r\n\r\n").next().unwrap().to_ascii_lowercase();
    assert!(
        !head.contains("transfer-encoding") && !head.contains("content-length"),
        "{head}"
    );
}

#[tokio::test]
async fn origins_the_allow_list_refuses_get_no_session_and_only_allowed_ones_frame_the_iframe() {
    let gw = TestGateway::start(&["--allow-origin", "http://app.example"]).await;
    let open = |origin: String| {
        let target = format!("/echo/1/{}/xhr", rand_u16() + 20000);
        async move {
            let headers = [("Origin", origin.as_str())];
            Stream::open_from("127.0.0.1", gw.main, "POST", &target, &headers, b"").await
        }
    };
    let refused = open("http://evil.example".into()).await;
    assert_eq!(refused.head.status, 403);
    assert_eq!(refused.head.header("access-control-allow-origin"), None);
    let allowed = open("http://app.example".into()).await;
    assert_eq!(allowed.head.status, 200);
    assert_eq!(
        allowed.head.header("access-control-allow-origin"),
        Some("http://app.example")
    );
    // The iframe page's transports speak as the gateway's own origin, for whichever page
    // framed it: that origin is allowed, and only allowed origins may frame the page.
    let own = open(format!("http://{}", gw.main)).await;
    assert_eq!(own.head.status, 200);
    let iframe = get(gw.main, "/echo/iframe.html").await;
    assert_eq!(
        iframe.header("content-security-policy"),
        Some("frame-ancestors 'self' http://app.example:80")
    );
}

#[tokio::test]
async fn concurrent_senders_to_one_session_keep_each_senders_order_and_lose_nothing() {
    let gw = TestGateway::start(&[]).await;
    let s = session();
    let mut stream = Stream::open(gw.main, "POST", &format!("{s}/xhr_streaming"), b"").await;
    stream.chunk().await;
    assert_eq!(stream.chunk().await.unwrap(), "o\n");
    // Four senders, each on its own connections, twenty requests of two messages each.
    let senders: Vec<_> = (0..4)
        .map(|sender| {
            let (main, s) = (gw.main, s.clone());
            tokio::spawn(async move {
                for i in 0..20 {
                    let body = format!("[\"{sender}:{}\",\"{sender}:{}\"]", 2 * i, 2 * i + 1);
                    assert_eq!(post(main, &format!("{s}/xhr_send"), &body).await.0, 204);
                }
            })
        })
        .collect();
    let mut seen = Vec::new();
    while seen.len() < 160 {
        let frame = stream.chunk().await.unwrap();
        let items: Vec<String> =
            serde_json::from_str(frame.trim_end().strip_prefix('a').unwrap()).unwrap();
        seen.extend(items);
    }
    for sender in senders {
        sender.await.unwrap();
    }
    for sender in 0..4 {
        let prefix = format!("{sender}:");
        let mine: Vec<u32> = seen
            .iter()
            .filter_map(|m| m.strip_prefix(&prefix))
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(mine, (0..40).collect::<Vec<_>>(), "sender {sender}");
    }
}

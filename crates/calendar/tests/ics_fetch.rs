//! The ICS fetcher against a tiny HTTP server on 127.0.0.1: a feed, a 404, a feed too large and
//! a server too slow.

use std::time::Duration;

use jiff::tz::TimeZone;
use slotd_calendar::ics::IcsFeed;
use slotd_calendar::{BusySource, CalendarError, Interval};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const FEED: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART:20250310T140000Z\r\nDTEND:20250310T150000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

/// What the server does with each request.
#[derive(Clone, Copy)]
enum Behaviour {
    Feed,
    NotFound,
    /// A chunked body (no Content-Length) larger than the limit.
    Huge,
    /// Headers, then nothing for a long time.
    Slow,
    NotCalendar,
}

async fn serve(behaviour: Behaviour) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = match behaviour {
                    Behaviour::Feed => {
                        let head = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: text/calendar\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                            FEED.len()
                        );
                        socket.write_all((head + FEED).as_bytes()).await
                    }
                    Behaviour::NotFound => {
                        socket
                            .write_all(
                                b"HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\nconnection: close\r\n\r\nnot found",
                            )
                            .await
                    }
                    Behaviour::NotCalendar => {
                        socket
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\nconnection: close\r\n\r\n<html></ht>")
                            .await
                    }
                    Behaviour::Huge => {
                        let _ = socket
                            .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n")
                            .await;
                        let chunk = vec![b'x'; 16 * 1024];
                        for _ in 0..64 {
                            let head = format!("{:x}\r\n", chunk.len());
                            if socket.write_all(head.as_bytes()).await.is_err()
                                || socket.write_all(&chunk).await.is_err()
                                || socket.write_all(b"\r\n").await.is_err()
                            {
                                return;
                            }
                        }
                        socket.write_all(b"0\r\n\r\n").await
                    }
                    Behaviour::Slow => {
                        let _ = socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nBEGIN:").await;
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        Ok(())
                    }
                };
            });
        }
    });
    format!("http://{addr}/feed.ics")
}

fn range() -> Interval {
    Interval::new("2025-03-10T00:00:00Z".parse().unwrap(), "2025-03-11T00:00:00Z".parse().unwrap()).unwrap()
}

fn feed(url: String) -> IcsFeed {
    IcsFeed::new(reqwest::Client::new(), url, TimeZone::UTC)
}

#[tokio::test]
async fn a_feed_answered_with_200_gives_its_busy_time() {
    let busy = feed(serve(Behaviour::Feed).await).busy(range()).await.unwrap();
    assert_eq!(busy.len(), 1);
    assert_eq!(busy[0].start.to_string(), "2025-03-10T14:00:00Z");
}

#[tokio::test]
async fn a_404_is_refused_with_its_status() {
    match feed(serve(Behaviour::NotFound).await).busy(range()).await {
        Err(CalendarError::Refused { status: 404, detail }) => assert_eq!(detail, "not found"),
        other => panic!("expected Refused 404, got {other:?}"),
    }
}

#[tokio::test]
async fn a_feed_larger_than_the_limit_stops_reading_with_too_large() {
    let source = feed(serve(Behaviour::Huge).await).with_size_limit(100 * 1024);
    assert!(matches!(source.busy(range()).await, Err(CalendarError::TooLarge(102_400))));
}

#[tokio::test]
async fn a_server_slower_than_the_time_limit_is_unreachable() {
    let source = feed(serve(Behaviour::Slow).await).with_time_limit(Duration::from_millis(500));
    let started = std::time::Instant::now();
    assert!(matches!(source.busy(range()).await, Err(CalendarError::Unreachable(_))));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn an_answer_that_is_not_icalendar_is_invalid() {
    assert!(matches!(feed(serve(Behaviour::NotCalendar).await).busy(range()).await, Err(CalendarError::Invalid(_))));
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let source = feed(format!("http://{addr}/feed.ics"));
    assert!(matches!(source.busy(range()).await, Err(CalendarError::Unreachable(_))));
}

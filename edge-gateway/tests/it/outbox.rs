//! The outbox keeps events across restarts and lets go only of acknowledged ones.

use chrono::Utc;
use edge_gateway::event::{Blob, NewEvent};
use edge_gateway::outbox::Outbox;
use protocol::{EventEnvelope, EventKind, EvidenceKind, Severity};
use uuid::Uuid;

use crate::support::crowd_event;

fn event(severity: Severity, snapshot: Option<&Blob>) -> NewEvent {
    let evidence = snapshot.map(|s| (EvidenceKind::Snapshot, s.clone()));
    crowd_event(severity, evidence.into_iter().collect())
}

/// The ids of the next events the uplink would send.
async fn peek_ids(outbox: &Outbox) -> Vec<Uuid> {
    outbox
        .peek(10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect()
}

#[tokio::test]
async fn survives_reopening_and_deletes_only_acknowledged_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let snap = Blob::jpeg(vec![0xFF, 0xD8, 0xFF, 1, 2, 3]);
    let low = event(Severity::Low, Some(&snap));
    let high = event(Severity::High, Some(&snap));
    let medium = event(Severity::Medium, None);
    {
        let outbox = Outbox::open(&path).await.unwrap();
        for e in [&low, &high, &medium] {
            outbox.push(e).await.unwrap();
        }
        outbox.push(&low).await.unwrap(); // pushing the same event twice keeps one
    }
    let outbox = Outbox::open(&path).await.unwrap();
    assert_eq!(outbox.pending().await.unwrap(), 3);
    let ids = peek_ids(&outbox).await;
    assert_eq!(
        ids,
        vec![high.envelope.id, medium.envelope.id, low.envelope.id],
        "high priority first"
    );
    assert_eq!(outbox.peek(10).await.unwrap()[0], high.envelope);

    let blobs = outbox
        .blobs_for(&[low.envelope.id, high.envelope.id])
        .await
        .unwrap();
    assert_eq!(blobs.len(), 1, "one blob shared by two events is sent once");
    assert!(!blobs[0].uploaded);
    outbox.mark_uploaded(&snap.sha256).await.unwrap();

    outbox.ack(&[high.envelope.id]).await.unwrap();
    assert_eq!(outbox.pending().await.unwrap(), 2);
    assert_eq!(
        outbox.blob_data(&snap.sha256).await.unwrap().unwrap(),
        snap.data,
        "still needed by the low event"
    );
    assert!(outbox.blobs_for(&[low.envelope.id]).await.unwrap()[0].uploaded);

    outbox
        .dead_letter(low.envelope.id, "refused")
        .await
        .unwrap();
    assert_eq!(outbox.pending().await.unwrap(), 1);
    assert_eq!(outbox.dead_letters().await.unwrap(), 1);
    assert!(
        outbox.blob_data(&snap.sha256).await.unwrap().is_none(),
        "an unreferenced blob is deleted"
    );
}

#[tokio::test]
async fn an_unreadable_row_is_set_aside_and_the_rest_still_flows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let outbox = Outbox::open(&path).await.unwrap();
    let (bad, good) = (event(Severity::High, None), event(Severity::Low, None));
    outbox.push(&bad).await.unwrap();
    outbox.push(&good).await.unwrap();
    // Damage one row behind the outbox's back, as a bug or an old version might.
    let raw = sqlx::SqlitePool::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    sqlx::query("UPDATE outbox SET body = '{not json' WHERE id = $1")
        .bind(bad.envelope.id.to_string())
        .execute(&raw)
        .await
        .unwrap();
    let ids = peek_ids(&outbox).await;
    assert_eq!(ids, vec![good.envelope.id]);
    assert_eq!(outbox.dead_letters().await.unwrap(), 1);
    assert_eq!(outbox.pending().await.unwrap(), 1);
}

#[tokio::test]
async fn sos_calls_go_first_and_a_batch_is_stored_whole() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(&dir.path().join("outbox.db")).await.unwrap();
    let high = event(Severity::High, None);
    let mut sos = event(Severity::High, None);
    sos.envelope.rule = "sos".into();
    let photo = Blob::jpeg(vec![0xFF, 0xD8, 0xFF, 9]);
    let low = event(Severity::Low, Some(&photo));
    outbox
        .push_all(&[high.clone(), low.clone(), sos.clone()])
        .await
        .unwrap();
    assert_eq!(
        peek_ids(&outbox).await,
        vec![sos.envelope.id, high.envelope.id, low.envelope.id]
    );
    assert_eq!(
        outbox.blob_data(&photo.sha256).await.unwrap().unwrap(),
        photo.data
    );
}

#[tokio::test]
async fn the_end_of_a_condition_waits_behind_what_is_still_going_on() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(&dir.path().join("outbox.db")).await.unwrap();
    let mut ended = event(Severity::High, None);
    ended.envelope.kind = EventKind::Ended;
    let update = NewEvent {
        envelope: EventEnvelope {
            kind: EventKind::Update,
            id: Uuid::now_v7(),
            ..ended.envelope.clone()
        },
        blobs: Vec::new(),
    };
    let medium = event(Severity::Medium, None);
    outbox
        .push_all(&[ended.clone(), medium.clone(), update.clone()])
        .await
        .unwrap();
    assert_eq!(
        peek_ids(&outbox).await,
        vec![update.envelope.id, medium.envelope.id, ended.envelope.id],
        "a high-risk update keeps its lane; an end goes to the lowest"
    );
}

/// A write torn at the end of the outbox's log (the file cut mid-frame, as a power cut can
/// leave it) is found and reported on the next start; every event before it is there.
#[tokio::test]
async fn a_torn_write_at_the_end_of_the_log_is_reported_and_the_rest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let outbox = Outbox::open(&live.join("outbox.db")).await.unwrap();
    let events: Vec<NewEvent> = (0..20).map(|_| event(Severity::Medium, None)).collect();
    for e in &events {
        outbox.push(e).await.unwrap();
    }
    // The files as a crash would leave them (the live outbox is still open, unchanged).
    let crashed = dir.path().join("crashed");
    std::fs::create_dir(&crashed).unwrap();
    for name in ["outbox.db", "outbox.db-wal"] {
        std::fs::copy(live.join(name), crashed.join(name)).unwrap();
    }
    let wal = crashed.join("outbox.db-wal");
    let intact = Outbox::examine_log(&wal);
    assert!(
        intact.commits >= 20,
        "SQLite's own log reads as intact: {intact:?}"
    );
    assert_eq!(intact.ignored_bytes, 0, "{intact:?}");

    // Tear the last frame.
    let len = std::fs::metadata(&wal).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&wal)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    let reopened = Outbox::open(&crashed.join("outbox.db")).await.unwrap();
    let tail = reopened.recovery().clone();
    assert!(tail.ignored_bytes > 0, "{tail:?}");
    assert_eq!(tail.reason, Some("a frame cut short"));
    let kept = reopened.peek(100).await.unwrap();
    assert_eq!(
        kept.len(),
        19,
        "only the event whose commit was torn is gone"
    );
    let want: Vec<_> = events[..19].iter().map(|e| e.envelope.id).collect();
    let have: Vec<_> = kept.iter().map(|e| e.id).collect();
    assert_eq!(have, want, "everything before the torn write, in order");
}

/// Over its size budget, the outbox lets evidence go before events and low risk before
/// high: first the photos of low-risk events, then those of high-risk ones, then low-risk
/// events; what an event no longer carries, its evidence list no longer names.
#[tokio::test]
async fn over_budget_evidence_goes_first_then_low_risk_events() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(&dir.path().join("outbox.db")).await.unwrap();
    let photo = |i: u32| {
        let data: Vec<u8> = (0..20_000u32)
            .map(|b| (b.wrapping_mul(2_654_435_761).wrapping_add(i * 7919) >> 13) as u8)
            .collect();
        Blob::jpeg(data)
    };
    let mut low = Vec::new();
    let mut high = Vec::new();
    for i in 0..10 {
        low.push(event(Severity::Low, Some(&photo(i))));
        high.push(event(Severity::High, Some(&photo(100 + i))));
    }
    outbox.push_all(&low).await.unwrap();
    outbox.push_all(&high).await.unwrap();
    let full = outbox.used_bytes().await.unwrap();
    assert!(full > 400_000, "{full}");
    assert_eq!(
        outbox.enforce_budget(full * 2).await.unwrap(),
        None,
        "within budget"
    );

    // A budget the low events' photos make up for.
    let ev = outbox
        .enforce_budget(full - 150_000)
        .await
        .unwrap()
        .unwrap();
    assert!(ev.blobs >= 1 && ev.events == 0, "{ev:?}");
    assert!(ev.used_after < full - 150_000, "{ev:?}");
    let ids_low: Vec<_> = low.iter().map(|e| e.envelope.id).collect();
    let ids_high: Vec<_> = high.iter().map(|e| e.envelope.id).collect();
    let blobs_of = |ids: Vec<uuid::Uuid>| {
        let outbox = outbox.clone();
        async move { outbox.blobs_for(&ids).await.unwrap().len() }
    };
    assert!(blobs_of(ids_low.clone()).await < 10, "low-risk photos went");
    assert_eq!(
        blobs_of(ids_high.clone()).await,
        10,
        "high-risk photos stayed"
    );
    assert_eq!(outbox.pending().await.unwrap(), 20, "every event stayed");
    let bodies = outbox.peek(100).await.unwrap();
    let without_photo = bodies.iter().filter(|e| e.evidence.is_empty()).count();
    assert_eq!(
        without_photo as u64, ev.blobs,
        "evicted photos are no longer referenced"
    );

    // A budget nothing but events can meet: all photos, then low-risk events first.
    let ev = outbox.enforce_budget(40_000).await.unwrap().unwrap();
    assert!(ev.events > 0, "{ev:?}");
    let left = outbox.peek(100).await.unwrap();
    assert!(left.iter().all(|e| e.evidence.is_empty()));
    let high_left = left.iter().filter(|e| e.severity == Severity::High).count();
    let low_left = left.iter().filter(|e| e.severity == Severity::Low).count();
    assert!(
        low_left == 0 || high_left == 10,
        "a high-risk event went while low-risk ones stayed: {low_left} low, {high_left} high left"
    );
}

#[tokio::test]
async fn the_oldest_waiting_event_is_known_until_it_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(&dir.path().join("outbox.db")).await.unwrap();
    assert_eq!(outbox.oldest_pending().await.unwrap(), None);
    let before = Utc::now() - chrono::Duration::milliseconds(1);
    let first = event(Severity::Low, None);
    outbox.push(&first).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let second = event(Severity::High, None);
    outbox.push(&second).await.unwrap();
    let oldest = outbox.oldest_pending().await.unwrap().unwrap();
    assert!(oldest >= before && oldest < Utc::now(), "{oldest}");
    outbox.ack(&[first.envelope.id]).await.unwrap();
    let next = outbox.oldest_pending().await.unwrap().unwrap();
    assert!(next > oldest, "{next} should be after {oldest}");
    outbox.ack(&[second.envelope.id]).await.unwrap();
    assert_eq!(outbox.oldest_pending().await.unwrap(), None);
}

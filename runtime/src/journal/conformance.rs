//! Behaviour every journal engine shares, written once and run against
//! each (`sqlite/tests.rs`, `postgres/tests.rs`) so that the engines
//! cannot drift. `$open` makes a fresh, empty journal: it evaluates to
//! `(journal, guard)`, the guard keeping its storage alive.

/// The message path: intake, outcomes, per-key order, deliveries' states,
/// recovery of unfinished messages, duplicates.
macro_rules! message_path {
    ($open:expr) => {
        use $crate::journal::{MessageStatus, NewMessage, Outcome};

        fn msg(id: &str) -> NewMessage {
            $crate::journal::test_message(id)
        }

        /// A transformed message with one delivery to `d` under `key`.
        fn keyed_outcome(id: &str, key: &str) -> Outcome {
            let mut o = $crate::journal::test_outcome(id);
            o.deliveries[0].ordering_key = Some(key.into());
            o
        }

        #[test]
        fn order_is_intake_order_not_the_order_plugins_finish_in() {
            let (j, _guard) = $open;
            let due_ids = |busy: &[i64]| -> Vec<String> {
                j.due("d", 10, 10, busy)
                    .unwrap()
                    .into_iter()
                    .map(|d| d.message_id)
                    .collect()
            };
            let keyed = |id: &str| NewMessage {
                ordering_keys: vec![("d".into(), "A".into())],
                ..msg(id)
            };
            let outcome = |id: &str| keyed_outcome(id, "A");
            j.append(keyed("first")).wait().unwrap();
            j.append(keyed("second")).wait().unwrap();
            j.append(msg("unkeyed")).wait().unwrap();
            // The second message's plugins finish first: it waits for the first.
            j.record(outcome("second")).wait().unwrap();
            assert!(j.due("d", 10, 10, &[]).unwrap().is_empty());
            // A first message that maps to nothing releases it.
            j.record(Outcome {
                deliveries: vec![],
                status: MessageStatus::Rejected,
                ..outcome("first")
            })
            .wait()
            .unwrap();
            assert_eq!(due_ids(&[]), ["second"]);
            // Recorded later but received earlier: goes first.
            j.append(keyed("third")).wait().unwrap();
            j.append(keyed("fourth")).wait().unwrap();
            j.record(outcome("fourth")).wait().unwrap();
            j.record(outcome("third")).wait().unwrap();
            let due = j.due("d", 10, 10, &[]).unwrap();
            j.delivered(due[0].id, 20).wait().unwrap();
            assert_eq!(due_ids(&[]), ["third"]);
        }

        #[test]
        fn a_stuck_head_blocks_only_its_key() {
            let (j, _guard) = $open;
            let due_ids = |busy: &[i64]| -> Vec<String> {
                j.due("d", 10, 10, busy)
                    .unwrap()
                    .into_iter()
                    .map(|d| d.message_id)
                    .collect()
            };
            for (i, key) in ["A", "A", "B"].iter().enumerate() {
                let id = format!("m{i}");
                j.append(msg(&id)).wait().unwrap();
                j.record(keyed_outcome(&id, key)).wait().unwrap();
            }
            let due = j.due("d", 10, 10, &[]).unwrap();
            let ids: Vec<&str> = due.iter().map(|d| d.message_id.as_str()).collect();
            assert_eq!(ids, ["m0", "m2"], "only the head of A, and B");
            // A's head fails and waits: A stays blocked, B is unaffected.
            j.attempt_failed(due[0].id, "down", Some(1000))
                .wait()
                .unwrap();
            assert_eq!(due_ids(&[]), ["m2"]);
            assert_eq!(j.next_due("d").unwrap(), Some(0));
            j.delivered(due[0].id, 1000).wait().unwrap();
            assert_eq!(
                due_ids(&[due[1].id]),
                ["m1"],
                "A's next one is free once its head is delivered"
            );
        }

        #[test]
        fn many_writers_share_commits() {
            let (j, _guard) = $open;
            let j = std::sync::Arc::new(j);
            let threads: Vec<_> = (0..8)
                .map(|t| {
                    let j = j.clone();
                    std::thread::spawn(move || {
                        for i in 0..200 {
                            j.append(msg(&format!("t{t}-{i}"))).wait().unwrap();
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(j.unfinished().unwrap().len(), 1600);
        }

        #[test]
        fn unfinished_messages_come_back_oldest_first_with_what_was_received() {
            let (j, _guard) = $open;
            let mut m = msg("b");
            m.remote = Some("127.0.0.1:9".into());
            m.peer_subject = Some("CN=lab".into());
            m.body = b"MSH|^~\\&|\r\x00\xff".to_vec();
            j.append(msg("a")).wait().unwrap();
            j.append(m.clone()).wait().unwrap();
            j.append(msg("c")).wait().unwrap();
            j.record($crate::journal::test_outcome("c")).wait().unwrap();
            let back = j.unfinished().unwrap();
            let ids: Vec<&str> = back.iter().map(|u| u.message.id.as_str()).collect();
            assert_eq!(ids, ["a", "b"]);
            let b = &back[1].message;
            assert_eq!(
                (&b.remote, &b.peer_subject, &b.body, &b.control_id, &b.route),
                (&m.remote, &m.peer_subject, &m.body, &m.control_id, &m.route)
            );
        }

        #[test]
        fn a_write_that_fails_fails_alone() {
            let (j, _guard) = $open;
            j.append(msg("dup")).wait().unwrap();
            // The same id twice in one group: only the second is refused.
            let first = j.append(msg("x"));
            let again = j.append(msg("dup"));
            let third = j.append(msg("y"));
            assert!(first.wait().is_ok());
            assert!(matches!(
                again.wait(),
                Err($crate::journal::JournalError::Write(_))
            ));
            assert!(third.wait().is_ok());
            assert_eq!(j.unfinished().unwrap().len(), 3);
        }

        #[test]
        fn deliveries_retry_then_die_and_are_counted() {
            let (j, _guard) = $open;
            for id in ["a", "b"] {
                j.append(msg(id)).wait().unwrap();
                j.record($crate::journal::test_outcome(id)).wait().unwrap();
            }
            assert_eq!(j.pending_counts().unwrap(), vec![("d".to_string(), 2)]);
            let due = j.due("d", 10, 1, &[]).unwrap();
            assert_eq!(due.len(), 1, "the limit holds");
            assert_eq!((due[0].n, due[0].attempts), (1, 0));
            assert_eq!(due[0].body, b"out");
            assert_eq!(due[0].control_id, "C-a");
            j.attempt_failed(due[0].id, "503", Some(50)).wait().unwrap();
            let later = j.due("d", 60, 10, &[]).unwrap();
            assert_eq!(later.len(), 2);
            assert_eq!(later[0].attempts, 1);
            j.attempt_failed(later[0].id, "503", None).wait().unwrap();
            j.delivered(later[1].id, 70).wait().unwrap();
            assert_eq!(j.backlog("d", 100).unwrap(), (0, 1));
            assert_eq!(j.backlog("elsewhere", 100).unwrap(), (0, 0));
            assert!(j.pending_counts().unwrap().is_empty());
            assert_eq!(j.next_due("d").unwrap(), None);
            assert!(j.due("d", 1_000, 10, &[]).unwrap().is_empty());
        }

        #[test]
        fn backlogs_are_counted_up_to_their_cap() {
            let (j, _guard) = $open;
            for i in 0..7 {
                let id = format!("m{i}");
                j.append(msg(&id)).wait().unwrap();
                j.record($crate::journal::test_outcome(&id)).wait().unwrap();
            }
            assert_eq!(j.backlog("d", 5).unwrap(), (5, 0));
            assert_eq!(j.backlog("d", 50).unwrap(), (7, 0));
        }

        #[test]
        fn duplicates_are_found_by_sender_and_control_id_since_a_time() {
            let (j, _guard) = $open;
            let mut m = msg("one");
            m.received_at = 1_000;
            j.append(m).wait().unwrap();
            j.record($crate::journal::test_outcome("one"))
                .wait()
                .unwrap();
            let found = j.find_recent("A", "F", "C-one", 500).unwrap().unwrap();
            assert_eq!(
                (found.id.as_str(), found.status),
                ("one", MessageStatus::Transformed)
            );
            assert!(j.find_recent("A", "F", "C-one", 1_001).unwrap().is_none());
            assert!(j.find_recent("A", "OTHER", "C-one", 0).unwrap().is_none());
        }

        #[test]
        fn a_closed_journal_refuses_writes() {
            let (j, _guard) = $open;
            j.close();
            assert!(matches!(
                j.append(msg("late")).wait(),
                Err($crate::journal::JournalError::Closed)
            ));
        }
    };
}

pub(crate) use message_path;

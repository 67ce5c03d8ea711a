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

        /// The messages whose deliveries to `d` are due at 10, skipping
        /// `busy`.
        fn due_ids(j: &dyn $crate::journal::Journal, busy: &[i64]) -> Vec<String> {
            j.due("d", 10, 10, busy)
                .unwrap()
                .into_iter()
                .map(|d| d.message_id)
                .collect()
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
            assert_eq!(due_ids(&j, &[]), ["second"]);
            // Recorded later but received earlier: goes first.
            j.append(keyed("third")).wait().unwrap();
            j.append(keyed("fourth")).wait().unwrap();
            j.record(outcome("fourth")).wait().unwrap();
            j.record(outcome("third")).wait().unwrap();
            let due = j.due("d", 10, 10, &[]).unwrap();
            j.delivered(due[0].id, 20).wait().unwrap();
            assert_eq!(due_ids(&j, &[]), ["third"]);
        }

        #[test]
        fn a_stuck_head_blocks_only_its_key() {
            let (j, _guard) = $open;
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
            assert_eq!(due_ids(&j, &[]), ["m2"]);
            assert_eq!(j.next_due("d").unwrap(), Some(0));
            j.delivered(due[0].id, 1000).wait().unwrap();
            assert_eq!(
                due_ids(&j, &[due[1].id]),
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
            // None is another node's to take over.
            assert!(j.take_over(10).unwrap().is_empty());
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
        fn health_counts_the_work_held_and_checks_integrity() {
            let (j, _guard) = $open;
            let empty = j.health().unwrap();
            assert_eq!((empty.pending, empty.dead, empty.unfinished), (0, 0, 0));
            assert_eq!(empty.oldest_pending, None);
            if let Some(problems) = &empty.integrity {
                assert!(problems.is_empty(), "{problems:?}");
            }
            for id in ["a", "b", "c"] {
                j.append(msg(id)).wait().unwrap();
            }
            for id in ["a", "b"] {
                j.record($crate::journal::test_outcome(id)).wait().unwrap();
            }
            let due = j.due("d", 10, 10, &[]).unwrap();
            j.attempt_failed(due[0].id, "503", None).wait().unwrap();
            let h = j.health().unwrap();
            assert_eq!((h.pending, h.dead, h.unfinished), (1, 1, 1), "{h:?}");
            let received = j.show("b").unwrap().unwrap().summary.received_at;
            assert_eq!(h.oldest_pending, Some(received));
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
        fn a_duplicate_is_refused_at_intake_even_when_both_arrive_together() {
            use $crate::journal::JournalError;
            let (j, _guard) = $open;
            let copy = |id: &str, at: i64, since: Option<i64>| NewMessage {
                control_id: "C-same".into(),
                received_at: at,
                dedup_since: since,
                ..msg(id)
            };
            j.append(copy("first", 1_000, Some(0))).wait().unwrap();
            // Within the window: refused, naming the original; nothing of
            // it recorded.
            assert_eq!(
                j.append(copy("again", 1_500, Some(500))).wait(),
                Err(JournalError::Duplicate {
                    original: "first".into()
                })
            );
            assert!(j.show("again").unwrap().is_none());
            // Outside the window, or from a source that keeps duplicates:
            // taken.
            j.append(copy("later", 9_000, Some(5_000))).wait().unwrap();
            j.append(copy("kept", 9_001, None)).wait().unwrap();
            // Many copies committed together (one group): exactly one is
            // kept, the others name it.
            let commits: Vec<_> = (0..20)
                .map(|i| j.append(copy(&format!("burst{i}"), 20_000, Some(19_000))))
                .collect();
            let results: Vec<_> = commits.into_iter().map(|c| c.wait()).collect();
            let kept: Vec<usize> = (0..20).filter(|&i| results[i].is_ok()).collect();
            assert_eq!(kept.len(), 1, "{results:?}");
            let original = format!("burst{}", kept[0]);
            for r in results.iter().filter(|r| r.is_err()) {
                assert_eq!(
                    r,
                    &Err(JournalError::Duplicate {
                        original: original.clone()
                    })
                );
            }
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

/// The operators' questions: which messages, what became of one. Uses
/// the helpers [`message_path`] defines.
macro_rules! queries {
    ($open:expr) => {
        use $crate::journal::query::{Filter, StatusFilter};

        /// Five messages a second apart: a, b on source `lab`; types and
        /// routes varied; patients P1 (a, c) and P2 (b).
        fn filled() -> Vec<NewMessage> {
            let specs = [
                ("a", "lab", "ADT^A01", "adt", "P1"),
                ("b", "lab", "ADT^A08", "adt", "P2"),
                ("c", "er", "ORU^R01", "results", "P1"),
                ("d", "er", "ADT^A04", "adt", ""),
                ("e", "er", "SIU^S12", "scheduling", ""),
            ];
            specs
                .iter()
                .enumerate()
                .map(|(i, (id, source, ty, route, patient))| NewMessage {
                    source: source.to_string(),
                    message_type: ty.to_string(),
                    route: route.to_string(),
                    received_at: 1_000 * (i as i64 + 1),
                    patient_ids: if patient.is_empty() {
                        vec![]
                    } else {
                        vec![patient.to_string()]
                    },
                    ..msg(id)
                })
                .collect()
        }

        #[test]
        fn messages_are_listed_by_every_filter_newest_first() {
            let (j, _guard) = $open;
            for m in filled() {
                j.append(m).wait().unwrap();
            }
            j.record($crate::journal::test_outcome("a")).wait().unwrap();
            j.record(Outcome {
                status: MessageStatus::Rejected,
                deliveries: vec![],
                ..$crate::journal::test_outcome("c")
            })
            .wait()
            .unwrap();
            let ids = |f: Filter| -> Vec<String> {
                j.list(&f).unwrap().into_iter().map(|s| s.id).collect()
            };
            let all = || Filter {
                limit: 100,
                ..Filter::default()
            };
            assert_eq!(ids(all()), ["e", "d", "c", "b", "a"]);
            assert_eq!(
                ids(Filter {
                    source: Some("lab".into()),
                    ..all()
                }),
                ["b", "a"]
            );
            assert_eq!(
                ids(Filter {
                    message_type: Some("ADT^A0*".into()),
                    ..all()
                }),
                ["d", "b", "a"]
            );
            assert_eq!(
                ids(Filter {
                    message_type: Some("ADT^A0[18]".into()),
                    ..all()
                }),
                ["b", "a"]
            );
            assert_eq!(
                ids(Filter {
                    message_type: Some("ADT?A01".into()),
                    ..all()
                }),
                ["a"]
            );
            assert_eq!(
                ids(Filter {
                    route: Some("adt".into()),
                    patient: Some("P1".into()),
                    ..all()
                }),
                ["a"]
            );
            assert_eq!(
                ids(Filter {
                    control_id: Some("C-d".into()),
                    ..all()
                }),
                ["d"]
            );
            assert_eq!(
                ids(Filter {
                    since: Some(2_000),
                    until: Some(4_000),
                    ..all()
                }),
                ["c", "b"]
            );
            assert_eq!(
                ids(Filter {
                    status: Some(StatusFilter::Message(MessageStatus::Rejected)),
                    ..all()
                }),
                ["c"]
            );
            assert_eq!(
                ids(Filter {
                    status: Some(StatusFilter::Delivery(
                        $crate::journal::DeliveryState::Pending
                    )),
                    ..all()
                }),
                ["a"]
            );
            assert_eq!(
                ids(Filter {
                    limit: 2,
                    offset: 1,
                    ..all()
                }),
                ["d", "c"]
            );
            let a = j
                .list(&Filter {
                    control_id: Some("C-a".into()),
                    ..all()
                })
                .unwrap();
            assert_eq!(
                (a[0].status, a[0].pending, a[0].delivered, a[0].dead),
                (MessageStatus::Transformed, 1, 0, 0)
            );
            assert_eq!(
                j.select(&Filter { limit: 1, ..all() }, 3).unwrap(),
                ["e", "d", "c"],
                "a selection takes max, not the page's limit"
            );
        }

        #[test]
        fn one_message_is_shown_whole_and_its_outputs_read_once() {
            let (j, _guard) = $open;
            let mut m = msg("m");
            m.remote = Some("10.0.0.1:5000".into());
            j.append(m).wait().unwrap();
            let mut o = $crate::journal::test_outcome("m");
            let mut second = o.deliveries[0].clone();
            second.destination = "e".into();
            o.deliveries.push(second);
            let mut two = o.deliveries[0].clone();
            two.n = 2;
            two.body = b"two".to_vec();
            o.deliveries.push(two);
            o.versions = vec![$crate::journal::PluginUse {
                plugin: "adt-to-fhir".into(),
                sha256: "ab".repeat(32),
                declared_version: Some("1.2.0".into()),
                signer: None,
                key: None,
            }];
            j.record(o).wait().unwrap();
            let due = j.due("d", 10, 10, &[]).unwrap();
            j.delivered(due[0].id, 50).wait().unwrap();
            let d = j.show("m").unwrap().unwrap();
            assert_eq!(d.remote.as_deref(), Some("10.0.0.1:5000"));
            assert_eq!(d.sender, ("A".to_string(), "F".to_string()));
            assert_eq!(d.plugins[0].plugin, "adt-to-fhir");
            assert_eq!(d.plugins[0].declared_version.as_deref(), Some("1.2.0"));
            assert_eq!(d.deliveries.len(), 3);
            assert_eq!((d.summary.delivered, d.summary.pending), (1, 2));
            let delivered = d
                .deliveries
                .iter()
                .find(|r| r.delivered_at.is_some())
                .unwrap();
            assert_eq!((delivered.attempts, delivered.delivered_at), (1, Some(50)));
            assert_eq!(d.run, 1);
            assert!(d.earlier.is_empty());
            let r = j.recorded("m").unwrap().unwrap();
            let bodies: Vec<&[u8]> = r.outputs.iter().map(|o| o.body.as_slice()).collect();
            assert_eq!(bodies, [b"out".as_slice(), b"two".as_slice()]);
            assert_eq!(r.status, MessageStatus::Transformed);
            assert!(j.show("nope").unwrap().is_none());
            assert!(j.recorded("nope").unwrap().is_none());
        }
    };
}

/// The operators' actions: resend, reprocess, purge. Uses the helpers
/// [`message_path`] defines.
macro_rules! operations {
    ($open:expr) => {
        use $crate::journal::DeliveryState;

        #[test]
        fn reprocessing_keeps_the_earlier_run_and_replaces_its_unsent_deliveries() {
            let (j, _guard) = $open;
            let rejected = |id: &str| Outcome {
                message_id: id.into(),
                status: MessageStatus::Rejected,
                error: Some("plugin p rejected the message: PID-7".into()),
                versions: vec![],
                deliveries: vec![],
            };
            // r: rejected. t: transformed, its delivery done. p: transformed, its
            // delivery still pending. w: still on its way through the plugins.
            for id in ["r", "t", "p", "w"] {
                j.append(msg(id)).wait().unwrap();
            }
            j.record(rejected("r")).wait().unwrap();
            j.record($crate::journal::test_outcome("t")).wait().unwrap();
            j.record($crate::journal::test_outcome("p")).wait().unwrap();
            let t_delivery = j.due("d", 10, 10, &[]).unwrap()[0].id;
            j.delivered(t_delivery, 5).wait().unwrap();
            let p_delivery = j.due("d", 10, 10, &[]).unwrap()[0].id;

            let ids: Vec<String> = ["r", "t", "p", "w", "nope"].map(String::from).into();
            let done = j.reprocess(&ids).unwrap();
            assert_eq!(done.queued, 3);
            assert_eq!(
                done.superseded, 1,
                "p's pending delivery, never t's done one"
            );
            assert_eq!(done.unknown, vec!["nope".to_string()]);
            assert_eq!(done.in_progress, vec!["w".to_string()]);
            // Asking again while they wait changes nothing.
            let again = j.reprocess(&ids[..1]).unwrap();
            assert_eq!((again.queued, again.in_progress.len()), (0, 1));

            // The superseded delivery is never sent, even if its attempt under way
            // ends in failure.
            assert!(due_ids(&j, &[]).is_empty());
            j.attempt_failed(p_delivery, "refused", None)
                .wait()
                .unwrap();
            assert_eq!(j.resend_dead().unwrap(), 0);
            assert_eq!(j.resend(&["p".to_string()]).unwrap().queued, 0);

            // The runtime takes the queued ones once; a restart resumes only w.
            let resumed: Vec<String> = j
                .unfinished()
                .unwrap()
                .into_iter()
                .map(|u| u.message.id)
                .collect();
            assert_eq!(resumed, vec!["w".to_string()]);
            let taken: Vec<String> = j
                .take_reprocess(2)
                .unwrap()
                .into_iter()
                .map(|u| u.message.id)
                .collect();
            assert_eq!(taken.len(), 2);
            let rest = j.take_reprocess(10).unwrap();
            assert_eq!(rest.len(), 1);
            assert!(j.take_reprocess(10).unwrap().is_empty());
            // Taken, not yet recorded, the process stops: the next start resumes
            // them with w.
            assert_eq!(j.unfinished().unwrap().len(), 4);

            // The second run: r now transformed; its first outcome is kept.
            j.record($crate::journal::test_outcome("r")).wait().unwrap();
            j.record($crate::journal::test_outcome("p")).wait().unwrap();
            let r = j.show("r").unwrap().unwrap();
            assert_eq!(r.run, 2);
            assert_eq!(r.summary.status, MessageStatus::Transformed);
            assert_eq!(r.earlier.len(), 1);
            assert_eq!(r.earlier[0].run, 1);
            assert_eq!(r.earlier[0].status, MessageStatus::Rejected);
            assert!(r.earlier[0].error.as_deref().unwrap().contains("PID-7"));
            assert_eq!(r.deliveries.len(), 1);
            assert_eq!(r.deliveries[0].run, 2);
            let p = j.show("p").unwrap().unwrap();
            let states: Vec<(i64, DeliveryState)> =
                p.deliveries.iter().map(|d| (d.run, d.state)).collect();
            assert_eq!(
                states,
                vec![(2, DeliveryState::Pending), (1, DeliveryState::Superseded)]
            );
            assert_eq!(p.summary.pending, 1);
            // t's first delivery stays done and is not counted as this run's.
            j.record($crate::journal::test_outcome("t")).wait().unwrap();
            let t = j.show("t").unwrap().unwrap();
            assert_eq!((t.summary.delivered, t.summary.pending), (0, 1));
            assert_eq!(t.deliveries[1].state, DeliveryState::Delivered);
            // A resend sends this run's outputs only.
            assert_eq!(j.resend(&["t".to_string()]).unwrap().queued, 1);

            // Purged with the message: its earlier runs too.
            j.record(rejected("w")).wait().unwrap();
            for d in j.due("d", 10, 10, &[]).unwrap() {
                j.delivered(d.id, 6).wait().unwrap();
            }
            assert_eq!(j.purge(i64::MAX).unwrap().messages, 4);
            // (A message that came back under the same id has no earlier runs.)
            j.append(msg("r")).wait().unwrap();
            j.record($crate::journal::test_outcome("r")).wait().unwrap();
            assert!(j.show("r").unwrap().unwrap().earlier.is_empty());

            // Weft's own alert events are never reprocessed.
            let mut alert = msg("alert");
            alert.source = $crate::alerts::SOURCE.into();
            j.append_settled(alert, $crate::journal::test_outcome("alert"))
                .wait()
                .unwrap();
            let own = j.reprocess(&["alert".to_string()]).unwrap();
            assert_eq!((own.queued, own.own_events.len()), (0, 1));
        }
    };
}

/// The audit trail: one hash chain, listed, verified, purged from its
/// oldest end with the chain still verifiable.
macro_rules! audit_trail {
    ($open:expr) => {
        use $crate::journal::audit::{AuditFilter, Record, Verdict};

        fn record(action: &'static str, id: &str) -> Record {
            Record {
                who: "ops".into(),
                via: "api",
                action,
                messages: if id.is_empty() {
                    vec![]
                } else {
                    vec![id.into()]
                },
                remote: "127.0.0.1:5000".into(),
                result: "ok".into(),
            }
        }

        #[test]
        fn an_intact_chain_verifies_and_lists_newest_first() {
            let (j, _guard) = $open;
            assert!(matches!(
                j.audit_verify().unwrap(),
                Verdict::Intact { entries: 0, .. }
            ));
            for i in 0..5 {
                j.audit_append(&record("message.body", &format!("m{i}")))
                    .unwrap();
            }
            let Verdict::Intact {
                entries,
                head_seq,
                head_hash,
            } = j.audit_verify().unwrap()
            else {
                panic!()
            };
            assert_eq!((entries, head_seq), (5, 5));
            assert_eq!(j.audit_hash_at(5).unwrap(), Some(head_hash));
            assert_eq!(j.audit_hash_at(6).unwrap(), None);
            let f = AuditFilter {
                message: Some("m3".into()),
                limit: 10,
                ..Default::default()
            };
            let got = j.audit_list(&f).unwrap();
            assert_eq!(got.len(), 1);
            assert_eq!(
                (got[0].seq, got[0].messages.as_slice()),
                (4, ["m3".to_string()].as_slice())
            );
            let mine = j
                .audit_list(&AuditFilter {
                    who: Some("ops".into()),
                    limit: 2,
                    ..Default::default()
                })
                .unwrap();
            let seqs: Vec<i64> = mine.iter().map(|e| e.seq).collect();
            assert_eq!(seqs, [5, 4]);
            assert!(
                j.audit_list(&AuditFilter {
                    who: Some("someone".into()),
                    limit: 10,
                    ..Default::default()
                })
                .unwrap()
                .is_empty()
            );
        }

        #[test]
        fn audit_retention_keeps_the_chain_verifiable() {
            let (j, _guard) = $open;
            for i in 0..4 {
                j.audit_append(&record("message.body", &format!("m{i}")))
                    .unwrap();
            }
            let cutoff = $crate::journal::now_ms() + 1;
            std::thread::sleep(std::time::Duration::from_millis(5));
            j.audit_append(&record("reload", "")).unwrap();
            assert_eq!(j.audit_purge(cutoff).unwrap(), 4);
            let Verdict::Intact {
                entries, head_seq, ..
            } = j.audit_verify().unwrap()
            else {
                panic!()
            };
            assert_eq!((entries, head_seq), (1, 5));
            // The chain goes on from where it was.
            assert_eq!(j.audit_append(&record("reload", "")).unwrap().seq, 6);
            assert!(matches!(
                j.audit_verify().unwrap(),
                Verdict::Intact { entries: 2, .. }
            ));
        }

        #[test]
        fn many_appenders_make_one_unbroken_chain() {
            let (j, _guard) = $open;
            let j = std::sync::Arc::new(j);
            let threads: Vec<_> = (0..4)
                .map(|t| {
                    let j = j.clone();
                    std::thread::spawn(move || {
                        for i in 0..25 {
                            j.audit_append(&record("message.body", &format!("t{t}-{i}")))
                                .unwrap();
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            assert!(matches!(
                j.audit_verify().unwrap(),
                Verdict::Intact { entries: 100, .. }
            ));
        }
    };
}

pub(crate) use {audit_trail, message_path, operations, queries};

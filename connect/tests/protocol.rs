//! `fairway connect` at the protocol level, with the generated gRPC client
//! (the PySpark suite in `tests/python` drives it with the real client):
//! answers against plain DataFusion, reattaching to an operation, Spark's
//! error shape, per-session temporary views and interrupts.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fairway_connect::proto::{
    self, ErrorInfo, RpcStatus, execute_plan_response::ResponseType,
    spark_connect_service_client::SparkConnectServiceClient,
};
use fairway_connect::{ConnectOptions, serve};
use fairway_engine::arrow::array::RecordBatch;
use fairway_engine::arrow::ipc::reader::StreamReader;
use fairway_engine::arrow::util::pretty::pretty_format_batches;
use fairway_engine::{EngineConfig, Session};
use futures::StreamExt;
use prost::Message;
use tonic::transport::Channel;

/// An upper bound for anything here, so that a hang fails a test.
const DEADLINE: Duration = Duration::from_secs(60);

fn tpch_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/tpch-sf0.01")
}

async fn start() -> (
    SparkConnectServiceClient<Channel>,
    tokio::sync::oneshot::Sender<()>,
) {
    let session = Session::new(EngineConfig::with_slots(2)).expect("session");
    session
        .register_tables_in(tpch_dir().to_str().unwrap())
        .await
        .expect("tables");
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel::<SocketAddr>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // The server plans on threads with large stacks, as `fairway connect`
    // does (a plan nests up to 50 relations deep).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(64 << 20)
        .enable_all()
        .build()
        .expect("server runtime");
    std::thread::spawn(move || {
        runtime
            .block_on(serve(
                session,
                "127.0.0.1:0".parse().unwrap(),
                ConnectOptions::default(),
                move |a| {
                    let _ = addr_tx.send(a);
                },
                async {
                    let _ = stop_rx.await;
                },
            ))
            .expect("serve");
    });
    let addr = addr_rx.await.expect("bound");
    let client = SparkConnectServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect")
        .max_decoding_message_size(usize::MAX);
    (client, stop_tx)
}

fn session_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn sql_relation(query: &str) -> proto::Relation {
    proto::Relation {
        common: None,
        rel_type: Some(proto::relation::RelType::Sql(proto::Sql {
            query: query.to_string(),
            ..Default::default()
        })),
    }
}

fn request(session: &str, plan: proto::plan::OpType) -> proto::ExecutePlanRequest {
    proto::ExecutePlanRequest {
        session_id: session.to_string(),
        plan: Some(proto::Plan {
            op_type: Some(plan),
        }),
        request_options: vec![proto::execute_plan_request::RequestOption {
            request_option: Some(
                proto::execute_plan_request::request_option::RequestOption::ReattachOptions(
                    proto::ReattachOptions { reattachable: true },
                ),
            ),
        }],
        operation_id: Some(uuid::Uuid::new_v4().to_string()),
        ..Default::default()
    }
}

/// Every response of a request, or the status it failed with.
async fn responses(
    client: &mut SparkConnectServiceClient<Channel>,
    req: proto::ExecutePlanRequest,
) -> Result<Vec<proto::ExecutePlanResponse>, tonic::Status> {
    let mut stream = client.execute_plan(req).await?.into_inner();
    let mut out = Vec::new();
    while let Some(r) = tokio::time::timeout(DEADLINE, stream.next())
        .await
        .expect("a response in time")
    {
        out.push(r?);
    }
    Ok(out)
}

fn batches(responses: &[proto::ExecutePlanResponse]) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    for r in responses {
        if let Some(ResponseType::ArrowBatch(b)) = &r.response_type {
            let reader = StreamReader::try_new(std::io::Cursor::new(b.data.clone()), None).unwrap();
            let got: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
            let rows: usize = got.iter().map(|b| b.num_rows()).sum();
            assert_eq!(rows as i64, b.row_count, "row_count matches the batch");
            assert_eq!(
                got.len(),
                1,
                "one record batch per response, as clients expect"
            );
            out.extend(got);
        }
    }
    out
}

async fn rows_of(
    client: &mut SparkConnectServiceClient<Channel>,
    session: &str,
    query: &str,
) -> Result<String, tonic::Status> {
    let r = responses(
        client,
        request(session, proto::plan::OpType::Root(sql_relation(query))),
    )
    .await?;
    assert!(
        matches!(
            r.last().and_then(|r| r.response_type.as_ref()),
            Some(ResponseType::ResultComplete(_))
        ),
        "the stream ends with result_complete"
    );
    Ok(pretty_format_batches(&batches(&r)).unwrap().to_string())
}

fn error_info(status: &tonic::Status) -> ErrorInfo {
    let rpc = RpcStatus::decode(status.details()).expect("google.rpc.Status details");
    let any = rpc.details.first().expect("an ErrorInfo detail");
    ErrorInfo::decode(any.value.as_slice()).expect("ErrorInfo")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sql_answers_match_plain_datafusion() {
    let (mut client, _stop) = start().await;
    let session = session_id();
    // A query comes back as a lazy SQL relation; a DDL statement runs at once.
    let command = proto::Command {
        command_type: Some(proto::command::CommandType::SqlCommand(proto::SqlCommand {
            input: Some(sql_relation("select 1 as x")),
            ..Default::default()
        })),
    };
    let r = responses(
        &mut client,
        request(&session, proto::plan::OpType::Command(command)),
    )
    .await
    .unwrap();
    let Some(ResponseType::SqlCommandResult(result)) = &r[0].response_type else {
        panic!("a sql_command_result first: {r:?}");
    };
    assert!(matches!(
        result.relation.as_ref().and_then(|r| r.rel_type.as_ref()),
        Some(proto::relation::RelType::Sql(_))
    ));
    let query = "select n_regionkey, count(*) as n, min(n_name) as first \
                 from nation group by n_regionkey order by n_regionkey";
    let got = rows_of(&mut client, &session, query).await.unwrap();
    let plain = fairway_engine::plain_datafusion_context(4);
    plain
        .register_parquet(
            "nation",
            tpch_dir().join("nation.parquet").to_str().unwrap(),
            Default::default(),
        )
        .await
        .unwrap();
    let want = plain.sql(query).await.unwrap().collect().await.unwrap();
    // Spark sends strings as Utf8; compare the text.
    assert_eq!(got, pretty_format_batches(&want).unwrap().to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_reattaches_after_its_last_response() {
    let (mut client, _stop) = start().await;
    let session = session_id();
    let req = request(
        &session,
        proto::plan::OpType::Root(proto::Relation {
            common: None,
            rel_type: Some(proto::relation::RelType::Range(proto::Range {
                start: Some(0),
                end: 1_000_000,
                step: 1,
                num_partitions: None,
            })),
        }),
    );
    let op = req.operation_id.clone().unwrap();
    let mut stream = client.execute_plan(req).await.unwrap().into_inner();
    let mut first = Vec::new();
    for _ in 0..2 {
        first.push(stream.next().await.unwrap().unwrap());
    }
    drop(stream);
    let last = first.last().unwrap().response_id.clone();
    let mut rest = Vec::new();
    let mut again = client
        .reattach_execute(proto::ReattachExecuteRequest {
            session_id: session.clone(),
            operation_id: op.clone(),
            last_response_id: Some(last),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    while let Some(r) = again.next().await {
        rest.push(r.unwrap());
    }
    assert!(matches!(
        rest.last().unwrap().response_type,
        Some(ResponseType::ResultComplete(_))
    ));
    first.extend(rest);
    let ids: std::collections::HashSet<_> = first.iter().map(|r| r.response_id.clone()).collect();
    assert_eq!(ids.len(), first.len(), "no response twice");
    let all = batches(&first);
    let rows: usize = all.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 1_000_000);
    let sum: i64 = all
        .iter()
        .map(|b| {
            fairway_engine::arrow::compute::sum(
                b.column(0)
                    .as_any()
                    .downcast_ref::<fairway_engine::arrow::array::Int64Array>()
                    .unwrap(),
            )
            .unwrap_or(0)
        })
        .sum();
    assert_eq!(sum, 999_999 * 1_000_000 / 2);
    // Released: the operation is gone.
    client
        .release_execute(proto::ReleaseExecuteRequest {
            session_id: session.clone(),
            operation_id: op.clone(),
            release: Some(proto::release_execute_request::Release::ReleaseAll(
                proto::release_execute_request::ReleaseAll {},
            )),
            ..Default::default()
        })
        .await
        .unwrap();
    let gone = client
        .reattach_execute(proto::ReattachExecuteRequest {
            session_id: session,
            operation_id: op,
            ..Default::default()
        })
        .await;
    let status = match gone {
        Err(s) => s,
        Ok(resp) => resp.into_inner().next().await.unwrap().unwrap_err(),
    };
    assert!(
        status.message().contains("OPERATION_NOT_FOUND"),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failures_carry_spark_s_exception_classes_and_the_server_keeps_serving() {
    let (mut client, _stop) = start().await;
    let session = session_id();
    let cases = [
        (
            "selec 1",
            "org.apache.spark.sql.catalyst.parser.ParseException",
            "PARSE_SYNTAX_ERROR",
        ),
        (
            "select * from no_such_table",
            "org.apache.spark.sql.AnalysisException",
            "TABLE_OR_VIEW_NOT_FOUND",
        ),
        (
            "select no_such_column from nation",
            "org.apache.spark.sql.AnalysisException",
            "UNRESOLVED_COLUMN.WITH_SUGGESTION",
        ),
    ];
    for (query, class, error_class) in cases {
        let status = rows_of(&mut client, &session, query).await.unwrap_err();
        let info = error_info(&status);
        assert_eq!(info.reason, class, "{query}");
        assert_eq!(info.metadata["errorClass"], error_class, "{query}");
        let classes: Vec<String> = serde_json::from_str(&info.metadata["classes"]).unwrap();
        assert_eq!(classes[0], class);
        // The details can be fetched by id.
        let details = client
            .fetch_error_details(proto::FetchErrorDetailsRequest {
                session_id: session.clone(),
                error_id: info.metadata["errorId"].clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(details.root_error_idx, Some(0));
        assert_eq!(details.errors[0].error_type_hierarchy[0], class);
        let ok = rows_of(&mut client, &session, "select count(*) as n from region")
            .await
            .unwrap();
        assert!(ok.contains("| 5 |"), "{ok}");
    }
}

fn range(end: i64) -> proto::Relation {
    proto::Relation {
        common: None,
        rel_type: Some(proto::relation::RelType::Range(proto::Range {
            start: Some(0),
            end,
            step: 1,
            num_partitions: None,
        })),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn temporary_views_and_settings_belong_to_their_session() {
    let (mut client, _stop) = start().await;
    let (a, b) = (session_id(), session_id());
    for (session, end) in [(&a, 3), (&b, 5)] {
        let command = proto::Command {
            command_type: Some(proto::command::CommandType::CreateDataframeView(
                proto::CreateDataFrameViewCommand {
                    input: Some(range(end)),
                    name: "MyView".to_string(),
                    is_global: false,
                    replace: true,
                },
            )),
        };
        responses(
            &mut client,
            request(session, proto::plan::OpType::Command(command)),
        )
        .await
        .unwrap();
        client
            .config(proto::ConfigRequest {
                session_id: session.clone(),
                operation: Some(proto::config_request::Operation {
                    op_type: Some(proto::config_request::operation::OpType::Set(
                        proto::config_request::Set {
                            pairs: vec![proto::KeyValue {
                                key: "spark.scheduler.pool".into(),
                                value: Some(format!("pool{end}")),
                            }],
                            silent: None,
                        },
                    )),
                }),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    for (session, end) in [(&a, 3), (&b, 5)] {
        let got = rows_of(
            &mut client,
            session,
            "select count(*) as n, sum(id) as s from myview",
        )
        .await
        .unwrap();
        let want = format!("| {end} | {} |", (0..end).sum::<i64>());
        assert!(got.contains(&want), "{got} should contain {want}");
        let pool = client
            .config(proto::ConfigRequest {
                session_id: session.clone(),
                operation: Some(proto::config_request::Operation {
                    op_type: Some(proto::config_request::operation::OpType::Get(
                        proto::config_request::Get {
                            keys: vec!["spark.scheduler.pool".into()],
                        },
                    )),
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            pool.pairs[0].value.as_deref(),
            Some(format!("pool{end}").as_str())
        );
    }
    // A third session sees neither view.
    let status = rows_of(&mut client, &session_id(), "select * from myview")
        .await
        .unwrap_err();
    assert_eq!(
        error_info(&status).metadata["errorClass"],
        "TABLE_OR_VIEW_NOT_FOUND"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interrupt_all_cancels_a_running_operation_at_once() {
    let (mut client, _stop) = start().await;
    let session = session_id();
    let long = "select count(*) from lineitem a, lineitem b where a.l_orderkey + b.l_orderkey < 0";
    let mut runner = client.clone();
    let s = session.clone();
    let running = tokio::spawn(async move { rows_of(&mut runner, &s, long).await });
    tokio::time::sleep(Duration::from_millis(800)).await;
    let asked = Instant::now();
    let interrupted = client
        .interrupt(proto::InterruptRequest {
            session_id: session.clone(),
            interrupt_type: proto::interrupt_request::InterruptType::All as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(interrupted.interrupted_ids.len(), 1, "{interrupted:?}");
    let status = tokio::time::timeout(DEADLINE, running)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(asked.elapsed() < DEADLINE);
    assert_eq!(
        error_info(&status).metadata["errorClass"],
        "OPERATION_CANCELED"
    );
    // The slots are free: the next query runs.
    let ok = rows_of(&mut client, &session, "select count(*) as n from nation")
        .await
        .unwrap();
    assert!(ok.contains("| 25 |"), "{ok}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sql_names_match_columns_ignoring_case_and_keep_alias_case() {
    let (mut client, _stop) = start().await;
    let session = session_id();
    let ddl = proto::Command {
        command_type: Some(proto::command::CommandType::SqlCommand(proto::SqlCommand {
            input: Some(sql_relation(
                r#"create table people as select * from (values (1, 'Ann'), (2, 'Bob')) as v("CustomerID", "FullName")"#,
            )),
            ..Default::default()
        })),
    };
    responses(
        &mut client,
        request(&session, proto::plan::OpType::Command(ddl)),
    )
    .await
    .unwrap();
    // Spark resolves `customerid` and `FULLNAME` to the columns; the output
    // keeps the columns' own case and the aliases' as written.
    let got = rows_of(
        &mut client,
        &session,
        "select customerid, FULLNAME, customerId * 10 as TenTimes from people order by CUSTOMERID",
    )
    .await
    .unwrap();
    let want = "\
+------------+----------+----------+
| CustomerID | FullName | TenTimes |
+------------+----------+----------+
| 1          | Ann      | 10       |
| 2          | Bob      | 20       |
+------------+----------+----------+";
    assert_eq!(got, want);
}

fn nested_filters(levels: usize) -> proto::Relation {
    let mut relation = range(10);
    for _ in 0..levels {
        relation = proto::Relation {
            common: None,
            rel_type: Some(proto::relation::RelType::Filter(Box::new(proto::Filter {
                input: Some(Box::new(relation)),
                condition: Some(proto::Expression {
                    common: None,
                    expr_type: Some(proto::expression::ExprType::ExpressionString(
                        proto::expression::ExpressionString {
                            expression: "id >= 0".to_string(),
                        },
                    )),
                }),
            }))),
        };
    }
    relation
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deep_plans_run_and_too_deep_ones_are_refused() {
    let (mut client, _stop) = start().await;
    let session = session_id();
    // 45 chained filters nest 90 messages deep (the request adds a few).
    let r = responses(
        &mut client,
        request(&session, proto::plan::OpType::Root(nested_filters(45))),
    )
    .await
    .unwrap();
    let rows: usize = batches(&r).iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 10);
    // Far deeper: refused with a clear error, and the server goes on.
    let status = responses(
        &mut client,
        request(&session, proto::plan::OpType::Root(nested_filters(200))),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("break the chain"), "{status:?}");
    let ok = rows_of(&mut client, &session, "select count(*) as n from region")
        .await
        .unwrap();
    assert!(ok.contains("| 5 |"), "{ok}");
}

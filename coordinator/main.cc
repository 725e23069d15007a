// fedmi-coordinator: registers sites, drives rounds, aggregates updates and
// keeps all state in SQLite. Flags override the TOML config (--config or
// $FEDMI_CONFIG).
#include <grpcpp/grpcpp.h>
#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/base/build_info.h"
#include "common/base/cli_config.h"
#include "common/base/clock.h"
#include "common/base/env.h"
#include "common/base/fault_hook.h"
#include "common/base/log.h"
#include "common/crypto/revocation_list.h"
#include "common/http/http_listener.h"
#include "common/metrics/metric_registry.h"
#include "common/rpc/channels.h"
#include "common/rpc/name_resolution.h"
#include "coordinator/audit_log.h"
#include "coordinator/coordinator_http.h"
#include "coordinator/coordinator_metrics.h"
#include "coordinator/federation.h"
#include "coordinator/grpc_services.h"

namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

int Run(int argc, char** argv) {
  CLI::App app{"fedmi-coordinator: the federation server. Sites dial in; admins start runs.",
               "fedmi-coordinator"};
  fedmi::AddConfigOption(app);
  std::string listen = "127.0.0.1:7000";
  std::string db_path = "fedmi-state/coordinator.db";
  std::string port_file;
  bool insecure = false;
  app.add_option("--listen", listen, "HOST:PORT to serve on (port 0 picks a free one)")
      ->capture_default_str();
  app.add_option("--db", db_path, "SQLite state file; models and spool live beside it")
      ->capture_default_str();
  app.add_option("--port-file", port_file, "write the bound port to this file once serving");
  double max_update_mb = 16384;
  app.add_option("--max-update-mb", max_update_mb,
                 "largest update body a site may upload, in MB; larger ones are refused as they "
                 "start")
      ->check(CLI::Range(0.001, 1e7))
      ->capture_default_str();
  std::string http_address;
  app.add_option("--http", http_address,
                 "HOST:PORT to serve Prometheus /metrics and the read-only dashboard on (off by "
                 "default). On a loopback "
                 "address plain HTTP, for anyone on this machine; on any other address HTTPS "
                 "only, for clients with an admin or auditor certificate of the project CA");
  app.add_flag("--insecure", insecure,
               "plaintext transport, no authentication: local experiments only");
  bool adaptive_windows = false;
  app.add_flag("--adaptive-windows", adaptive_windows,
               "let each upload's gRPC window grow with its bandwidth-delay product: faster "
               "uploads from sites far away (WAN), but the coordinator may then hold up to a "
               "whole update per uploading site in memory. Off: 64 KiB per stream, memory "
               "bounded however many sites upload (docs/performance.md)");
  fedmi::TlsFlags tls;
  fedmi::AddTlsOptions(app, tls);
  // Not the TLS key: whoever holds that must not be able to rewrite the log.
  std::string audit_key_file;
  std::string audit_cert_file;
  app.add_option("--audit-key", audit_key_file,
                 "the audit log's signing key (audit-key.pem from `fedmi provision`)");
  app.add_option("--audit-cert", audit_cert_file, "its audit-signer certificate (audit-cert.pem)");
  app.set_version_flag(
      "--version", [] { return fedmi::VersionText("fedmi-coordinator", /*binary_trains=*/false); },
      "print the git commit and build type, and exit");
  if (int code = fedmi::ParseCommandLine(app, argc, argv); code >= 0) return code;
  fedmi::SetLogTag("coordinator");
  if (absl::Status status = fedmi::CheckHostPort(listen); !status.ok()) {
    std::cerr << "error: --listen: " << status.message() << "\n";
    return 2;
  }
  bool http_loopback = false;
  if (!http_address.empty()) {
    auto host_port = fedmi::http::SplitHostPort(http_address);
    if (!host_port.ok()) {
      std::cerr << "error: --http: " << host_port.status().message() << "\n";
      return 2;
    }
    http_loopback = fedmi::http::IsLoopbackHost(host_port->first);
    if (!http_loopback && insecure) {
      std::cerr << "error: --http on a non-loopback address serves HTTPS with the coordinator's "
                   "kit, which --insecure does not have; use a loopback address\n";
      return 2;
    }
  }
  if (insecure) {
    FEDMI_LOG(WARNING) << "running with --insecure: plaintext transport, no authentication. "
                          "Use only for local experiments.";
  }
  const std::string config_file = fedmi::ConfigFileOf(app);
  db_path = fedmi::ResolveConfigPath(db_path, "--db", argc, argv, config_file);
  fedmi::TransportOptions transport;
  transport.insecure = insecure;
  transport.cert_file = fedmi::ResolveConfigPath(tls.cert, "--cert", argc, argv, config_file);
  transport.key_file = fedmi::ResolveConfigPath(tls.key, "--key", argc, argv, config_file);
  transport.ca_file = fedmi::ResolveConfigPath(tls.ca, "--ca", argc, argv, config_file);
  transport.crl_file = fedmi::ResolveConfigPath(tls.crl, "--crl", argc, argv, config_file);
  auto credentials = fedmi::MakeServerCredentials(transport);
  if (!credentials.ok()) {
    std::cerr << "error: " << credentials.status().message() << "\n";
    return 1;
  }

  const std::string state_dir = fedmi::DirName(db_path);
  mkdir(state_dir.c_str(), 0700);
  auto storage = fedmi::OpenSqliteStorage(db_path);
  if (!storage.ok()) {
    std::cerr << "error: " << storage.status().message() << "\n";
    return 1;
  }
  auto models = fedmi::ModelStore::Open(state_dir + "/models");
  if (!models.ok()) {
    std::cerr << "error: " << models.status().message() << "\n";
    return 1;
  }
  fedmi::RealClock clock;
  std::unique_ptr<fedmi::audit::AuditSigner> signer;
  if (!insecure) {
    auto created = fedmi::audit::LoadAuditSigner(
        fedmi::ResolveConfigPath(audit_key_file, "--audit-key", argc, argv, config_file),
        fedmi::ResolveConfigPath(audit_cert_file, "--audit-cert", argc, argv, config_file),
        transport.ca_file);
    if (!created.ok()) {
      std::cerr << "error: audit log signer: " << created.status().message() << "\n";
      return 1;
    }
    signer = *std::move(created);
  }
  auto audit_log = fedmi::AuditLog::Open(storage->get(), &clock, std::move(signer));
  if (!audit_log.ok()) {
    std::cerr << "error: cannot open the audit log in " << db_path << ": "
              << audit_log.status().message() << "\n";
    return 1;
  }
  fedmi::FederationOptions options;
  options.audit = audit_log->get();
  options.spool_dir = state_dir + "/spool";
  options.max_update_bytes = static_cast<uint64_t>(max_update_mb * 1e6);
  // Crash tests name a step in $FEDMI_TEST_CRASH_AT; otherwise this is a no-op.
  options.faults = &fedmi::CrashAtFaultPointFromEnvironment();
  if (!insecure) {
    std::ifstream ca(transport.ca_file, std::ios::binary);
    options.ca_pem.assign(std::istreambuf_iterator<char>(ca), std::istreambuf_iterator<char>());
    if (options.ca_pem.empty()) {
      std::cerr << "error: cannot read the project CA " << transport.ca_file << "\n";
      return 1;
    }
    // Signs each secure round's admission, which sites verify against the CA.
    auto key_pem = fedmi::ReadFileToString(transport.key_file);
    auto cert_pem = fedmi::ReadFileToString(transport.cert_file);
    if (!key_pem.ok() || !cert_pem.ok()) {
      std::cerr << "error: " << (key_pem.ok() ? cert_pem.status() : key_pem.status()).message()
                << "\n";
      return 1;
    }
    options.identity_key_pem = *std::move(key_pem);
    options.identity_cert_pem = *std::move(cert_pem);
  }
  if (!transport.crl_file.empty()) {
    auto crl = fedmi::LoadRevocationList(transport.crl_file, transport.ca_file);
    if (!crl.ok()) {
      std::cerr << "error: " << crl.status().message() << "\n";
      return 1;
    }
    FEDMI_LOG(INFO) << "CRL " << transport.crl_file << ": " << crl->serials().size()
                    << " revoked certificate(s) refused";
    options.crl = *std::move(crl);
  }
  fedmi::Federation federation(storage->get(), models->get(), &clock, options);
  if (absl::Status status = federation.Start(); !status.ok()) {
    std::cerr << "error: cannot load state from " << db_path << ": " << status.message() << "\n";
    return 1;
  }

  // Declared before the listener, whose handlers render it until it stops.
  fedmi::metrics::MetricRegistry metric_registry;
  // Set only when metrics are served; the gRPC services count into it.
  std::optional<fedmi::CoordinatorTransferMetrics> transfer_metrics;
  std::unique_ptr<fedmi::http::Listener> http_listener;
  if (!http_address.empty()) {
    absl::StatusOr<fedmi::CoordinatorTransferMetrics> metrics_registered =
        fedmi::RegisterCoordinatorMetrics(&federation, storage->get(), &metric_registry);
    absl::Status registered = metrics_registered.status();
    if (metrics_registered.ok()) transfer_metrics = *metrics_registered;
    fedmi::HttpAccessPolicy policy;
    policy.require_certificate = !http_loopback;
    policy.ca_pem = options.ca_pem;
    policy.federation = &federation;
    policy.clock = &clock;
    std::optional<fedmi::http::TlsServerOptions> tls;
    if (!http_loopback) {
      tls =
          fedmi::http::TlsServerOptions{transport.cert_file, transport.key_file, transport.ca_file};
    }
    auto started =
        registered.ok()
            ? fedmi::http::Listener::Start(
                  http_address, fedmi::CoordinatorHttpRoutes(&metric_registry, policy), tls)
            : absl::StatusOr<std::unique_ptr<fedmi::http::Listener>>(registered);
    if (!started.ok()) {
      std::cerr << "error: --http: " << started.status().message() << "\n";
      return 1;
    }
    http_listener = *std::move(started);
    if (http_loopback) {
      FEDMI_LOG(WARNING) << "serving /metrics over plain HTTP on " << http_address << " (port "
                         << http_listener->port()
                         << "): no encryption and no authentication, so anyone on this machine "
                            "can read it; on another address it would need HTTPS and an admin's "
                            "or auditor's certificate";
    } else {
      FEDMI_LOG(INFO) << "serving /metrics over HTTPS on " << http_address << " (port "
                      << http_listener->port()
                      << ") to admin and auditor certificates of the project CA";
    }
  }

  fedmi::Authenticator authenticator(insecure, &federation);
  fedmi::GrpcFederationService federation_service(&federation, &authenticator);
  fedmi::GrpcAdminService admin_service(&federation, &authenticator);
  if (transfer_metrics.has_value()) {
    federation_service.set_transfer_metrics(&*transfer_metrics);
    admin_service.set_transfer_metrics(&*transfer_metrics);
  }
  fedmi::GrpcAuditService audit_service(audit_log->get(), &authenticator);
  grpc::ServerBuilder builder;
  int bound_port = 0;
  // "localhost" binds loopback even where /etc/hosts lacks the name.
  builder.AddListeningPort(fedmi::LocalhostAsLoopback(listen), *credentials, &bound_port);
  builder.RegisterService(&federation_service);
  builder.RegisterService(&admin_service);
  builder.RegisterService(&audit_service);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  // A fixed receive window per stream unless --adaptive-windows. gRPC's
  // default grows each stream's window with its bandwidth-delay estimate,
  // and while the coordinator was busy with some uploads the others buffered
  // up to their whole update: memory grew by about a model per connected site
  // (16 sites x 1M parameters: 112 MiB peak RSS; about 50 MiB fixed, and
  // rounds faster there; 2 sites x 100M rounds slower, 8.45 to 10.33 s:
  // docs/performance.md). gRPC 1.51 keeps a fixed window at 64 KiB whatever
  // lookahead is asked for (grpc/grpc#39585), which bounds one site's upload
  // across a WAN to 64 KiB per round trip (1.3 MB/s at 50 ms). A resource
  // quota would bound memory with adaptive windows, but gRPC 1.51 resets
  // streams over it (RST_STREAM ENHANCE_YOUR_CALM: uploads failed at 4 sites
  // x 25M parameters under a 32 MiB quota).
  if (!adaptive_windows) builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound_port == 0) {
    std::cerr << "error: cannot listen on " << listen << " (address in use or not local?)\n";
    return 1;
  }
  FEDMI_LOG(INFO) << "serving on port " << bound_port
                  << (insecure ? " (plaintext)" : " (mutual TLS)") << ", state in " << db_path;
  // Whoever waits for the port file must never read half of it.
  if (!port_file.empty()) {
    if (absl::Status written = fedmi::WriteFileAtomically(*fedmi::Env::Default(), port_file,
                                                          absl::StrCat(bound_port, "\n"));
        !written.ok()) {
      FEDMI_LOG(ERROR) << "cannot write --port-file: " << written.message();
    }
  }

  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  while (!g_stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    federation.Tick();
  }
  FEDMI_LOG(INFO) << "shutting down";
  // Recorded first: whoever stops the process may not wait for the shutdown.
  // First, so that no refused scrape is recorded after the stop.
  http_listener.reset();
  (*audit_log)
      ->Record(fedmi::AuditLog::kCoordinator, fedmi::audit::Action::kCoordinatorStopped, 0, -1,
               {{"signal", "SIGINT or SIGTERM"}});
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Before any thread starts. glibc gives every thread that allocates its own
  // heap arena (up to 8 per core) and keeps what is freed there; with a
  // control stream, a reader thread and gRPC threads per connected site,
  // freed chunk buffers stayed resident per thread, and memory grew with the
  // number of sites (`fedmi bench round`, 16 sites x 1M parameters, stream
  // windows bounded: peak RSS 86-90 MiB with the default arenas, 49-50 MiB
  // with one; docs/performance.md).
  // The coordinator allocates little per value, so one arena costs nothing
  // measurable in time.
  mallopt(M_ARENA_MAX, 1);
  // Setting a trim threshold (as an earlier version did, at 1 MiB) also
  // freezes glibc's mmap threshold at 128 KiB: every chunk buffer and gRPC
  // slice of one then came from a fresh mmap, with a page fault per 4 KiB,
  // on every chunk of every model sent (docs/performance.md: at 8 sites x
  // 11M parameters the round went from 3.3 to 2.4 s without). So both are
  // set: buffers under 4 MiB come from the heap and are reused, and the heap
  // keeps up to 32 MiB free before giving memory back. Peak RSS measured the
  // same (16 sites x 1M: 49 MiB).
  mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 32 * 1024 * 1024);
  return Run(argc, argv);
}

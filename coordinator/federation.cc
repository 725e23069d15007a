#include "coordinator/federation.h"

#include <dirent.h>
#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/crypto/sha256.h"
#include "common/runspec/run_spec_json.h"

namespace fedmi {
namespace {

constexpr int32_t kMaxRounds = 100000;

absl::Status RemoveSpoolLeftovers(const std::string& dir) {
  DIR* handle = opendir(dir.c_str());
  if (handle == nullptr) return absl::OkStatus();
  std::vector<std::string> names;
  while (dirent* entry = readdir(handle)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  closedir(handle);
  // An upload cut short by a crash is never aggregated: its run asks again.
  for (const auto& name : names) std::remove((dir + "/" + name).c_str());
  return absl::OkStatus();
}

void FillRoundStatus(const RoundRecord& round, v1::RoundStatus* out) {
  out->set_round(round.round);
  out->set_state(StateName(round.state));
  *out->mutable_eval_metrics() = round.eval_metrics;
  std::string raw;
  if (HexDecode(round.model_sha256, &raw)) out->set_model_sha256(raw);
  out->set_started_at(round.started_at);
  out->set_finished_at(round.finished_at);
}

// What an auditor needs of a run spec: its hash (of the full spec) and the
// settings that matter to privacy and to what is trained.
nlohmann::json RunStartedDetail(const v1::RunSpec& spec, const std::string& spec_sha256) {
  nlohmann::json detail = RunSpecToJson(spec);
  detail["spec_sha256"] = spec_sha256;
  return detail;
}

void FillParticipation(const ParticipationRecord& record, v1::SiteParticipation* out) {
  out->set_site(record.site);
  out->set_examples(record.examples);
  *out->mutable_train_metrics() = record.train_metrics;
  *out->mutable_eval_metrics() = record.eval_metrics;
  std::string raw;
  if (HexDecode(record.update_sha256, &raw)) out->set_update_sha256(raw);
  out->set_state(StateName(record.state));
  out->set_detail(record.detail);
}

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kSite:
      return "site";
    case Role::kAdmin:
      return "admin";
    case Role::kAuditor:
      return "auditor";
  }
  return "unknown";
}

absl::Status ValidateSiteName(const std::string& name) {
  if (name.empty() || name.size() > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("site name must have 1 to 64 characters, got ", name.size()));
  }
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) {
      return absl::InvalidArgumentError(absl::StrCat(
          "site name '", name, "' may only contain letters, digits, '.', '_' and '-'"));
    }
  }
  return absl::OkStatus();
}

namespace {

absl::Status ValidateSecAggSettings(const v1::RunSpec& spec) {
  if (StrategyNeedsIndividualUpdates(spec.strategy())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "strategy '", spec.strategy(),
        "' needs each site's individual update, which secure "
        "aggregation hides from the coordinator: use fedavg, or turn secure aggregation off"));
  }
  const v1::SecAggSettings& settings = spec.secagg();
  // A threshold of t needs t + 1 sites: each site's secrets are shared among
  // the others only.
  if (spec.min_sites() < 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("secure aggregation needs min_sites of at least 3, got ", spec.min_sites(),
                     " (with 2 sites each could subtract its own update from the sum)"));
  }
  if (settings.threshold() != 0 &&
      (settings.threshold() < 2 || settings.threshold() > spec.min_sites() - 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("secagg threshold must be between 2 and min_sites - 1 (", spec.min_sites() - 1,
                     "), got ", settings.threshold()));
  }
  if (settings.neighbours() != 0 && settings.neighbours() < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "secagg neighbours must be at least 2 (0: every other site), got ", settings.neighbours()));
  }
  if (settings.threshold() != 0 && settings.neighbours() != 0 &&
      settings.threshold() > settings.neighbours()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "secagg threshold ", settings.threshold(), " exceeds secagg neighbours ",
        settings.neighbours(), ": a site's secrets are shared among its neighbours only"));
  }
  if (settings.clip() < 0 || !std::isfinite(settings.clip()) || settings.clip() > 1e6) {
    return absl::InvalidArgumentError(absl::StrCat(
        "secagg clip must be positive and at most 1e6 (0: default 1.0), got ", settings.clip()));
  }
  if (spec.max_update_norm() > 0) {
    return absl::InvalidArgumentError(
        "max_update_norm cannot be checked on masked updates: with secure aggregation the "
        "secagg clip bounds each value instead");
  }
  if (settings.max_examples() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("secagg max_examples must not be negative, got ", settings.max_examples()));
  }
  if (spec.max_sites() > 0 && spec.max_sites() > (1 << 24)) {
    return absl::InvalidArgumentError("secure aggregation supports at most 2^24 sites per round");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateRunSpec(v1::RunSpec* spec) {
  if (spec->model().empty()) spec->set_model("cnn");
  if (spec->strategy().empty()) spec->set_strategy("fedavg");
  if (spec->optimizer().empty()) spec->set_optimizer("adam");
  if (spec->num_classes() == 0) spec->set_num_classes(2);
  if (spec->min_sites() == 0) spec->set_min_sites(1);
  if (spec->local_epochs() == 0) spec->set_local_epochs(1);
  if (spec->batch_size() == 0) spec->set_batch_size(64);
  if (spec->lr() == 0) spec->set_lr(1e-3);
  if (spec->round_timeout_s() == 0) spec->set_round_timeout_s(3600);

  if (spec->rounds() < 1 || spec->rounds() > kMaxRounds) {
    return absl::InvalidArgumentError(
        absl::StrCat("rounds must be between 1 and ", kMaxRounds, ", got ", spec->rounds()));
  }
  if (spec->min_sites() < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_sites must be at least 1, got ", spec->min_sites()));
  }
  if (spec->max_sites() < 0 || (spec->max_sites() > 0 && spec->max_sites() < spec->min_sites())) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_sites must be 0 (all) or at least min_sites (", spec->min_sites(),
                     "), got ", spec->max_sites()));
  }
  if (spec->local_epochs() < 1 || spec->local_epochs() > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("local_epochs must be between 1 and 1000, got ", spec->local_epochs()));
  }
  if (spec->batch_size() < 1 || spec->batch_size() > 65536) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch_size must be between 1 and 65536, got ", spec->batch_size()));
  }
  if (!(spec->lr() > 0) || !std::isfinite(spec->lr())) {
    return absl::InvalidArgumentError(
        absl::StrCat("lr must be a positive number, got ", spec->lr()));
  }
  if (spec->num_classes() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_classes must be at least 2, got ", spec->num_classes()));
  }
  if (!(spec->round_timeout_s() > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("round_timeout_s must be positive, got ", spec->round_timeout_s()));
  }
  if (spec->optimizer() != "adam" && spec->optimizer() != "sgd") {
    return absl::InvalidArgumentError(
        absl::StrCat("optimizer '", spec->optimizer(), "' is unknown; use adam or sgd"));
  }
  if (spec->model() == "synthetic" && spec->synthetic_params() <= 0) {
    return absl::InvalidArgumentError("model 'synthetic' needs synthetic_params > 0");
  }
  if (!(spec->max_update_norm() >= 0) || !std::isfinite(spec->max_update_norm())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_update_norm must be 0 (no bound) or positive, got ", spec->max_update_norm()));
  }
  if (spec->max_round_retries() < 0 || spec->max_round_retries() > 100) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_round_retries must be between 0 and 100, got ", spec->max_round_retries()));
  }
  // Accepting this flag while running without it would tell sites and
  // auditors a privacy guarantee that does not hold.
  if (spec->differential_privacy()) {
    return absl::UnimplementedError("differential_privacy is not available yet");
  }
  auto aggregator = MakeAggregator(spec->strategy());
  if (!aggregator.ok()) return aggregator.status();
  if (spec->secure_aggregation()) RETURN_IF_ERROR(ValidateSecAggSettings(*spec));
  return absl::OkStatus();
}

Federation::Federation(Storage* storage, ModelStore* models, const Clock* clock,
                       FederationOptions options)
    : storage_(storage), models_(models), clock_(clock), options_(std::move(options)) {}

Federation::~Federation() {
  absl::MutexLock lock(&mu_);
  for (auto& [name, session] : sessions_) {
    session.channel->Close(absl::UnavailableError("coordinator is shutting down"));
  }
}

RoundManager::Deps Federation::Deps() {
  RoundManager::Deps deps{storage_, models_, clock_, this, options_.ca_pem, options_.audit};
  deps.faults = options_.faults;
  deps.env = options_.env;
  return deps;
}

void Federation::Audit(const std::string& actor, audit::Action action, int64_t run_id,
                       const nlohmann::json& detail) {
  if (options_.audit != nullptr) options_.audit->Record(actor, action, run_id, -1, detail);
}

void Federation::RecordDenied(const std::string& actor, const std::string& call,
                              const std::string& reason) {
  Audit(actor, audit::Action::kAuthDenied, 0, {{"call", call}, {"reason", reason}});
}

void Federation::RecordUploadRefused(const Caller& caller, const v1::UpdateMetadata& metadata,
                                     const absl::Status& status) {
  if (options_.audit == nullptr) return;
  options_.audit->Record(caller.name, audit::Action::kUpdateRefused, metadata.run_id(),
                         metadata.round(),
                         {{"site", caller.name},
                          {"examples", metadata.examples()},
                          {"code", absl::StatusCodeToString(status.code())},
                          {"reason", std::string(status.message())}});
}

void Federation::RecordExport(const Caller& caller, int64_t run_id, int32_t round,
                              const std::string& model_sha256_hex) {
  if (options_.audit != nullptr) {
    options_.audit->Record(
        caller.name, audit::Action::kModelExported, run_id, round,
        {{"model_sha256", model_sha256_hex}, {"round", round}, {"role", RoleName(caller.role)}});
  }
}

absl::Status Federation::Start() {
  mkdir(options_.spool_dir.c_str(), 0700);
  RETURN_IF_ERROR(RemoveSpoolLeftovers(options_.spool_dir));
  ASSIGN_OR_RETURN(std::set<std::string> referenced, storage_->ReferencedModels());
  RETURN_IF_ERROR(models_->CollectGarbage(referenced).status());
  ASSIGN_OR_RETURN(std::vector<SiteRecord> sites, storage_->ListSites());
  ASSIGN_OR_RETURN(std::vector<RunRecord> runs, storage_->ListRuns());
  absl::MutexLock lock(&mu_);
  for (auto& site : sites) known_sites_[site.name] = site;
  for (const auto& run : runs) {
    if (IsTerminal(run.state)) continue;
    auto manager = RoundManager::Load(run.id, Deps());
    if (!manager.ok()) {
      // One damaged run must not keep the others from resuming.
      (void)storage_->SetRunState(run.id, RunState::kFailed,
                                  absl::StrCat("cannot resume: ", manager.status().message()),
                                  clock_->NowUnixSeconds());
      continue;
    }
    runs_[run.id] = *std::move(manager);
  }
  ReapFinishedRuns();
  Changed();
  Audit(AuditLog::kCoordinator, audit::Action::kCoordinatorStarted, 0,
        {{"version", "0.1.0"}, {"runs_resumed", runs_.size()}});
  return absl::OkStatus();
}

std::vector<std::string> Federation::ConnectedSites() const {
  std::vector<std::string> names;
  for (const auto& [name, session] : sessions_) {
    if (session.channel->open()) names.push_back(name);
  }
  return names;
}

int64_t Federation::TrainExamples(const std::string& site) const {
  auto it = sessions_.find(site);
  return it == sessions_.end() ? 0 : it->second.record.train_examples;
}

bool Federation::Send(const std::string& site, const v1::CoordinatorMessage& message) {
  auto it = sessions_.find(site);
  return it != sessions_.end() && it->second.channel->Send(message);
}

absl::StatusOr<uint64_t> Federation::SiteConnected(const Caller& caller, const v1::Hello& hello,
                                                   std::shared_ptr<SiteChannel> channel) {
  absl::StatusOr<uint64_t> session = OpenSession(caller, hello, std::move(channel));
  if (!session.ok()) {
    Audit(caller.name, audit::Action::kSiteRefused, 0,
          {{"site", caller.name},
           {"hello_as", hello.site()},
           {"reason", std::string(session.status().message())}});
  }
  return session;
}

absl::StatusOr<uint64_t> Federation::OpenSession(const Caller& caller, const v1::Hello& hello,
                                                 std::shared_ptr<SiteChannel> channel) {
  RETURN_IF_ERROR(ValidateSiteName(caller.name));
  if (!hello.site().empty() && hello.site() != caller.name) {
    return absl::PermissionDeniedError(absl::StrCat("site authenticated as '", caller.name,
                                                    "' says hello as '", hello.site(), "'"));
  }
  RETURN_IF_ERROR(AuthorizeSite(caller));
  absl::MutexLock lock(&mu_);
  const double now = clock_->NowUnixSeconds();
  SiteRecord record;
  auto known = known_sites_.find(caller.name);
  if (known != known_sites_.end()) record = known->second;
  // Checked again under the lock: a revocation may have landed since
  // AuthorizeSite released it.
  if (record.revoked()) {
    return absl::PermissionDeniedError(
        absl::StrCat("site '", caller.name, "' was revoked by ", record.revoked_by));
  }
  record.name = caller.name;
  record.certificate_expires = caller.certificate_expires;
  const bool first_time = record.registered_at == 0;
  if (first_time) record.registered_at = now;
  record.last_seen = now;
  record.train_examples = hello.train_examples();
  record.val_examples = hello.val_examples();
  RETURN_IF_ERROR(storage_->UpsertSite(record));
  known_sites_[caller.name] = record;
  if (first_time) {
    Audit(caller.name, audit::Action::kSiteRegistered, 0,
          {{"site", caller.name}, {"certificate_expires", caller.certificate_expires}});
  }
  Audit(caller.name, audit::Action::kSiteConnected, 0,
        {{"site", caller.name},
         {"train_examples", hello.train_examples()},
         {"val_examples", hello.val_examples()},
         {"version", hello.version()}});

  auto existing = sessions_.find(caller.name);
  if (existing != sessions_.end()) {
    existing->second.channel->Close(
        absl::AlreadyExistsError("replaced by a newer connection of the same site"));
    sessions_.erase(existing);
    // Whatever the old session was doing is lost; its runs treat it as gone.
    for (auto& [id, run] : runs_) {
      run->OnSiteDisconnected(caller.name, "replaced by a newer connection");
    }
  }
  SiteSession session;
  session.id = next_session_++;
  session.channel = std::move(channel);
  session.record = record;
  const uint64_t id = session.id;
  v1::CoordinatorMessage welcome;
  welcome.mutable_welcome()->set_site(caller.name);
  welcome.mutable_welcome()->set_coordinator_version("0.1.0");
  session.channel->Send(welcome);
  sessions_[caller.name] = std::move(session);
  for (auto& [run_id, run] : runs_) run->OnSitesChanged();
  ReapFinishedRuns();
  Changed();
  return id;
}

void Federation::SiteDisconnected(const std::string& site, uint64_t session) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(site);
  if (it == sessions_.end() || it->second.id != session) return;
  SiteRecord record = it->second.record;
  record.last_seen = clock_->NowUnixSeconds();
  known_sites_[site] = record;
  (void)storage_->UpsertSite(record);
  sessions_.erase(it);
  Audit(site, audit::Action::kSiteDisconnected, 0, {{"site", site}});
  for (auto& [run_id, run] : runs_) {
    run->OnSiteDisconnected(site);
    // A run waiting on this site (e.g. for its initial model) tries others.
    run->OnSitesChanged();
  }
  ReapFinishedRuns();
  Changed();
}

absl::Status Federation::OnSiteMessage(const Caller& caller, const v1::SiteMessage& message) {
  RETURN_IF_ERROR(AuthorizeSite(caller));
  absl::MutexLock lock(&mu_);
  auto session = sessions_.find(caller.name);
  if (session == sessions_.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("site '", caller.name, "' has no open session; send hello first"));
  }
  session->second.record.last_seen = clock_->NowUnixSeconds();
  known_sites_[caller.name].last_seen = session->second.record.last_seen;
  absl::Status status;
  switch (message.kind_case()) {
    case v1::SiteMessage::kHeartbeat:
      return absl::OkStatus();
    case v1::SiteMessage::kRefusal: {
      ASSIGN_OR_RETURN(RoundManager * run, ActiveRun(message.refusal().run_id()));
      run->OnSiteReport(caller.name, message.refusal().round(), message.refusal().reason(),
                        /*refused=*/true);
      break;
    }
    case v1::SiteMessage::kFailure: {
      ASSIGN_OR_RETURN(RoundManager * run, ActiveRun(message.failure().run_id()));
      if (message.failure().protocol_violation()) {
        run->OnProtocolViolation(caller.name, message.failure().round(),
                                 message.failure().reason());
      } else {
        run->OnSiteReport(caller.name, message.failure().round(), message.failure().reason(),
                          /*refused=*/false);
      }
      break;
    }
    case v1::SiteMessage::kKeyAdvertisement: {
      ASSIGN_OR_RETURN(RoundManager * run, ActiveRun(message.key_advertisement().run_id()));
      status =
          run->OnKeyAdvertisement(caller.name, message.key_advertisement(), caller.certificate_pem);
      break;
    }
    case v1::SiteMessage::kShares: {
      ASSIGN_OR_RETURN(RoundManager * run, ActiveRun(message.shares().run_id()));
      status = run->OnShares(caller.name, message.shares());
      break;
    }
    case v1::SiteMessage::kUnmaskResponse: {
      ASSIGN_OR_RETURN(RoundManager * run, ActiveRun(message.unmask_response().run_id()));
      status = run->OnUnmaskResponse(caller.name, message.unmask_response());
      break;
    }
    case v1::SiteMessage::kEvalReport: {
      ASSIGN_OR_RETURN(RoundManager * run, ActiveRun(message.eval_report().run_id()));
      status = run->OnEvalReport(caller.name, message.eval_report());
      break;
    }
    case v1::SiteMessage::kHello:
      return absl::FailedPreconditionError("hello sent twice on one stream");
    default:
      return absl::InvalidArgumentError("empty site message");
  }
  ReapFinishedRuns();
  Changed();
  return status;
}

absl::StatusOr<RoundManager*> Federation::ActiveRun(int64_t run_id) {
  auto it = runs_.find(run_id);
  if (it != runs_.end()) return it->second.get();
  auto stored = storage_->GetRun(run_id);
  if (!stored.ok()) return stored.status();
  return absl::FailedPreconditionError(
      absl::StrCat("run ", run_id, " is not active (", StateName(stored->state), ")"));
}

void Federation::ReapFinishedRuns() {
  for (auto it = runs_.begin(); it != runs_.end();) {
    it = it->second->finished() ? runs_.erase(it) : std::next(it);
  }
}

absl::StatusOr<std::string> Federation::ModelPath(const v1::ModelRef& ref, std::string* sha256,
                                                  int32_t* round) {
  ASSIGN_OR_RETURN(std::vector<RoundRecord> rounds, storage_->ListRounds(ref.run_id()));
  if (rounds.empty()) {
    RETURN_IF_ERROR(storage_->GetRun(ref.run_id()).status());
    return absl::NotFoundError(absl::StrCat("run ", ref.run_id(), " has no model yet"));
  }
  const RoundRecord* chosen = nullptr;
  if (ref.round() < 0) {
    chosen = &rounds.back();
  } else {
    for (const auto& r : rounds) {
      if (r.round == ref.round()) chosen = &r;
    }
  }
  if (chosen == nullptr) {
    return absl::NotFoundError(absl::StrCat("run ", ref.run_id(), " has no committed round ",
                                            ref.round(), " (latest is ", rounds.back().round, ")"));
  }
  if (sha256 != nullptr && !HexDecode(chosen->model_sha256, sha256)) {
    return absl::DataLossError(absl::StrCat("round ", chosen->round, " has a corrupt model hash"));
  }
  if (round != nullptr) *round = chosen->round;
  return models_->PathFor(chosen->model_sha256);
}

absl::StatusOr<std::vector<TensorSpec>> Federation::BeginUpload(
    const Caller& caller, const v1::UpdateMetadata& metadata) {
  RETURN_IF_ERROR(AuthorizeSite(caller));
  if (!metadata.site().empty() && metadata.site() != caller.name) {
    return absl::PermissionDeniedError(absl::StrCat(
        "site '", caller.name, "' cannot upload on behalf of '", metadata.site(), "'"));
  }
  absl::MutexLock lock(&mu_);
  if (sessions_.find(caller.name) == sessions_.end()) {
    return absl::FailedPreconditionError(absl::StrCat("site '", caller.name, "' is not connected"));
  }
  ASSIGN_OR_RETURN(RoundManager * run, ActiveRun(metadata.run_id()));
  return run->ExpectedUpdate(caller.name, metadata);
}

absl::StatusOr<v1::UploadReceipt> Federation::CompleteUpload(const Caller& caller,
                                                             ReceivedUpdate update) {
  absl::MutexLock lock(&mu_);
  auto run = ActiveRun(update.metadata.run_id());
  if (!run.ok()) {
    std::remove(update.path.c_str());
    return run.status();
  }
  v1::UploadReceipt receipt;
  receipt.set_run_id(update.metadata.run_id());
  receipt.set_round(update.metadata.round());
  receipt.set_site(caller.name);
  receipt.set_sha256(update.sha256);
  receipt.set_bytes_received(update.bytes);
  receipt.set_examples(update.metadata.examples());
  v1::AuditEntry received;
  absl::Status status = (*run)->OnUpdate(caller.name, std::move(update), &received);
  ReapFinishedRuns();
  Changed();
  RETURN_IF_ERROR(status);
  if (received.seq() > 0) {
    receipt.set_audit_seq(received.seq());
    receipt.set_audit_hash(received.hash());
    receipt.set_time(received.time());
    RETURN_IF_ERROR(options_.audit->SignReceipt(&receipt));
  }
  return receipt;
}

absl::StatusOr<int64_t> Federation::StartRun(const Caller& caller, v1::RunSpec spec) {
  if (caller.role != Role::kAdmin) {
    RecordDenied(caller.name, "StartRun", "only an admin may start a run");
    return absl::PermissionDeniedError("only an admin may start a run");
  }
  RETURN_IF_ERROR(ValidateRunSpec(&spec));
  if (spec.secure_aggregation() && options_.ca_pem.empty()) {
    return absl::FailedPreconditionError(
        "secure aggregation needs mutual TLS: sites sign their key advertisements with their "
        "certificates, and this coordinator runs --insecure");
  }
  RunRecord record;
  record.spec = spec;
  std::string canonical;
  spec.SerializeToString(&canonical);
  record.spec_sha256 = HexEncode(Sha256::Digest(canonical));
  record.state = RunState::kPending;
  record.created_at = clock_->NowUnixSeconds();
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(int64_t run_id, storage_->CreateRun(record));
  Audit(caller.name, audit::Action::kRunStarted, run_id,
        RunStartedDetail(spec, record.spec_sha256));
  auto manager = RoundManager::Load(run_id, Deps());
  if (!manager.ok()) {
    // Never leave a stored run that nothing drives and nobody can abort.
    (void)storage_->SetRunState(run_id, RunState::kFailed,
                                absl::StrCat("cannot start: ", manager.status().message()),
                                clock_->NowUnixSeconds());
    return manager.status();
  }
  runs_[run_id] = *std::move(manager);
  ReapFinishedRuns();
  Changed();
  return run_id;
}

absl::StatusOr<v1::RunStatus> Federation::GetRun(int64_t run_id) {
  ASSIGN_OR_RETURN(RunRecord run, storage_->GetRun(run_id));
  ASSIGN_OR_RETURN(std::vector<RoundRecord> rounds, storage_->ListRounds(run_id));
  ASSIGN_OR_RETURN(std::vector<ParticipationRecord> parts, storage_->ListParticipations(run_id));
  v1::RunStatus status;
  status.set_run_id(run.id);
  *status.mutable_spec() = run.spec;
  status.set_state(StateName(run.state));
  status.set_error(run.error);
  status.set_phase(run.state == RunState::kPending ? "waiting-for-sites" : "finished");
  status.set_created_at(run.created_at);
  std::string raw;
  if (HexDecode(run.spec_sha256, &raw)) status.set_spec_sha256(raw);
  int32_t completed = 0;
  for (const auto& round : rounds) {
    if (round.round == 0) continue;
    v1::RoundStatus* out = status.add_rounds();
    FillRoundStatus(round, out);
    for (const auto& part : parts) {
      if (part.round == round.round) FillParticipation(part, out->add_sites());
    }
    if (round.state == RoundState::kEvaluated) completed = round.round;
  }
  status.set_completed_rounds(completed);
  absl::MutexLock lock(&mu_);
  auto live = runs_.find(run_id);
  if (live != runs_.end()) live->second->FillLiveStatus(&status);
  return status;
}

absl::StatusOr<std::vector<v1::RunStatus>> Federation::ListRuns() {
  ASSIGN_OR_RETURN(std::vector<RunRecord> runs, storage_->ListRuns());
  std::vector<v1::RunStatus> out;
  for (const auto& run : runs) {
    ASSIGN_OR_RETURN(v1::RunStatus status, GetRun(run.id));
    status.clear_rounds();
    out.push_back(std::move(status));
  }
  return out;
}

absl::Status Federation::AbortRun(const Caller& caller, int64_t run_id, const std::string& reason) {
  if (caller.role != Role::kAdmin) {
    RecordDenied(caller.name, "AbortRun", "only an admin may abort a run");
    return absl::PermissionDeniedError("only an admin may abort a run");
  }
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(RoundManager * run, ActiveRun(run_id));
  Audit(caller.name, audit::Action::kRunAborted, run_id, {{"reason", reason}});
  RETURN_IF_ERROR(run->Abort(
      reason.empty() ? absl::StrCat("aborted by ", caller.name.empty() ? "admin" : caller.name)
                     : reason));
  ReapFinishedRuns();
  Changed();
  return absl::OkStatus();
}

absl::Status Federation::AuthorizeSite(const Caller& caller) {
  absl::Status status = [&]() -> absl::Status {
    if (caller.role != Role::kSite) {
      return absl::PermissionDeniedError(absl::StrCat("'", caller.name, "' holds the ",
                                                      RoleName(caller.role),
                                                      " role; this call needs a site"));
    }
    absl::MutexLock lock(&mu_);
    auto known = known_sites_.find(caller.name);
    if (known != known_sites_.end() && known->second.revoked()) {
      return absl::PermissionDeniedError(
          absl::StrCat("site '", caller.name, "' was revoked by ", known->second.revoked_by,
                       known->second.revocation_reason.empty()
                           ? ""
                           : absl::StrCat(": ", known->second.revocation_reason)));
    }
    return absl::OkStatus();
  }();
  if (!status.ok()) RecordDenied(caller.name, "site call", std::string(status.message()));
  return status;
}

absl::Status Federation::RevokeSite(const Caller& caller, const std::string& site,
                                    const std::string& reason) {
  if (caller.role != Role::kAdmin) {
    RecordDenied(caller.name, "RevokeSite", "only an admin may revoke a site");
    return absl::PermissionDeniedError("only an admin may revoke a site");
  }
  RETURN_IF_ERROR(ValidateSiteName(site));
  absl::MutexLock lock(&mu_);
  SiteRecord record;
  auto known = known_sites_.find(site);
  if (known != known_sites_.end()) record = known->second;
  if (record.revoked()) {
    return absl::FailedPreconditionError(absl::StrCat("site '", site, "' is already revoked"));
  }
  const double now = clock_->NowUnixSeconds();
  record.name = site;
  if (record.registered_at == 0) record.registered_at = now;
  record.revoked_at = now;
  record.revoked_by = caller.name;
  record.revocation_reason = reason;
  // Stored first: a crash right after must not bring the site back.
  RETURN_IF_ERROR(storage_->UpsertSite(record));
  known_sites_[site] = record;
  Audit(caller.name, audit::Action::kSiteRevoked, 0, {{"site", site}, {"reason", reason}});
  auto session = sessions_.find(site);
  if (session != sessions_.end()) {
    session->second.channel->Close(absl::PermissionDeniedError(
        absl::StrCat("site '", site, "' was revoked by ", caller.name)));
    sessions_.erase(session);
    const std::string why =
        absl::StrCat("revoked by ", caller.name, reason.empty() ? "" : absl::StrCat(": ", reason));
    for (auto& [id, run] : runs_) run->OnSiteDisconnected(site, why);
  }
  ReapFinishedRuns();
  Changed();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::SiteInfo>> Federation::ListSites() {
  absl::MutexLock lock(&mu_);
  std::vector<v1::SiteInfo> out;
  for (const auto& [name, record] : known_sites_) {
    v1::SiteInfo info;
    info.set_site(name);
    info.set_connected(sessions_.count(name) > 0);
    info.set_last_seen(record.last_seen);
    info.set_train_examples(record.train_examples);
    info.set_val_examples(record.val_examples);
    info.set_registered_at(record.registered_at);
    info.set_state(record.revoked() ? "revoked" : "active");
    info.set_certificate_expires(record.certificate_expires);
    info.set_revoked_by(record.revoked_by);
    info.set_revoked_at(record.revoked_at);
    info.set_revocation_reason(record.revocation_reason);
    out.push_back(std::move(info));
  }
  return out;
}

void Federation::WaitForChange(uint64_t* version, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  const uint64_t seen = *version;
  auto changed = [this, seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return version_ != seen; };
  mu_.AwaitWithTimeout(absl::Condition(&changed), timeout);
  *version = version_;
}

uint64_t Federation::version() {
  absl::MutexLock lock(&mu_);
  return version_;
}

void Federation::Tick() {
  absl::MutexLock lock(&mu_);
  for (auto& [run_id, run] : runs_) run->OnTick();
  const size_t before = runs_.size();
  ReapFinishedRuns();
  if (runs_.size() != before) Changed();
}

}  // namespace fedmi

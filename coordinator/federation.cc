#include "coordinator/federation.h"

#include <algorithm>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/base/log.h"
#include "common/base/names.h"
#include "common/base/status.h"
#include "common/crypto/sha256.h"
#include "common/privacy/dp_plan.h"
#include "common/runspec/dp_spec.h"
#include "common/runspec/run_spec_json.h"
#include "common/runspec/transfer.h"
#include "coordinator/run_spec_validation.h"
#include "coordinator/run_status.h"

namespace fedmi {
namespace {

// An upload cut short by a crash is never aggregated: its run asks again.
void RemoveSpoolLeftovers(Env& env, const std::string& dir) {
  absl::StatusOr<std::vector<std::string>> names = env.ListDir(dir);
  if (!names.ok()) return;
  for (const auto& name : *names) (void)env.RemoveFile(dir + "/" + name);
}

// What an auditor needs of a run spec: its hash (of the full spec) and the
// settings that matter to privacy and to what is trained.
nlohmann::json RunStartedDetail(const v1::RunSpec& spec, const std::string& spec_sha256) {
  nlohmann::json detail = RunSpecToJson(spec);
  detail["spec_sha256"] = spec_sha256;
  return detail;
}

}  // namespace

Federation::Federation(Storage* storage, ModelStore* models, const Clock* clock,
                       FederationOptions options)
    : storage_(storage),
      models_(models),
      clock_(clock),
      options_(std::move(options)),
      sites_(storage, clock, options_.audit) {}

Federation::~Federation() {
  absl::MutexLock lock(&mu_);
  // The round managers go first: they reach sites through the registry.
  runs_.clear();
}

RoundManager::Deps Federation::Deps() {
  RoundManager::Deps deps{storage_, models_, clock_, &sites_, options_.ca_pem, options_.audit};
  deps.faults = options_.faults;
  deps.env = options_.env;
  deps.phases = &phase_times_;
  deps.identity_key_pem = options_.identity_key_pem;
  deps.identity_cert_pem = options_.identity_cert_pem;
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
  FEDMI_LOG(WARNING) << "update of site '" << caller.name << "' refused: " << status.message();
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
    options_.audit->Record(caller.name, audit::Action::kModelExported, run_id, round,
                           {{"model_sha256", model_sha256_hex},
                            {"round", round},
                            {"role", PartyRoleName(caller.role)}});
  }
}

absl::Status Federation::Start() {
  // Updates wait here before aggregation: only the coordinator may read them.
  RETURN_IF_ERROR(options_.env->CreateDirs(options_.spool_dir, 0700));
  RemoveSpoolLeftovers(*options_.env, options_.spool_dir);
  ASSIGN_OR_RETURN(std::set<std::string> referenced, storage_->ReferencedModels());
  // Artifacts live as long as a run names them.
  ASSIGN_OR_RETURN(std::vector<RunRecord> stored_runs, storage_->ListRuns());
  for (const RunRecord& run : stored_runs) {
    for (std::string& sha : ArtifactHashes(run.spec)) referenced.insert(std::move(sha));
  }
  RETURN_IF_ERROR(models_->CollectGarbage(referenced).status());
  ASSIGN_OR_RETURN(std::vector<SiteRecord> sites, storage_->ListSites());
  ASSIGN_OR_RETURN(std::vector<RevocationRecord> revoked, storage_->ListRevocations());
  ASSIGN_OR_RETURN(std::vector<RunRecord> runs, storage_->ListRuns());
  absl::MutexLock lock(&mu_);
  sites_.Load(sites);
  for (RevocationRecord& record : revoked) revoked_parties_[record.name] = std::move(record);
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
  RETURN_IF_ERROR(ValidatePartyName(caller.name, "site name"));
  if (!hello.site().empty() && hello.site() != caller.name) {
    return absl::PermissionDeniedError(absl::StrCat("site authenticated as '", caller.name,
                                                    "' says hello as '", hello.site(), "'"));
  }
  RETURN_IF_ERROR(AuthorizeSite(caller));
  absl::MutexLock lock(&mu_);
  // RecordHello checks revocation again under the lock: a revocation may
  // have landed since AuthorizeSite released it.
  ASSIGN_OR_RETURN(SiteRecord record, sites_.RecordHello(caller, hello));
  if (sites_.EndSession(caller.name, absl::AlreadyExistsError(
                                         "replaced by a newer connection of the same site"))) {
    // Whatever the old session was doing is lost; its runs treat it as gone.
    for (auto& [id, run] : runs_) {
      run->OnSiteDisconnected(caller.name, "replaced by a newer connection");
    }
  }
  const uint64_t id = sites_.StartSession(record, std::move(channel));
  for (auto& [run_id, run] : runs_) run->OnSitesChanged();
  ReapFinishedRuns();
  Changed();
  return id;
}

void Federation::SiteDisconnected(const std::string& site, uint64_t session) {
  absl::MutexLock lock(&mu_);
  if (!sites_.SessionEnded(site, session)) return;
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
  RETURN_IF_ERROR(sites_.Touch(caller.name));
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
    case v1::SiteMessage::kSurvivorSignature: {
      ASSIGN_OR_RETURN(RoundManager * run, ActiveRun(message.survivor_signature().run_id()));
      status = run->OnSurvivorSignature(caller.name, message.survivor_signature());
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
  if (!ref.artifact_sha256().empty()) {
    ASSIGN_OR_RETURN(RunRecord run, storage_->GetRun(ref.run_id()));
    const std::vector<std::string> named = ArtifactHashes(run.spec);
    if (std::find(named.begin(), named.end(), ref.artifact_sha256()) == named.end()) {
      return absl::PermissionDeniedError(absl::StrCat("run ", ref.run_id(), " names no artifact ",
                                                      ShortHash(ref.artifact_sha256())));
    }
    if (sha256 != nullptr && !HexDecode(ref.artifact_sha256(), sha256)) {
      return absl::InvalidArgumentError("malformed artifact hash");
    }
    if (round != nullptr) *round = 0;
    return models_->PathFor(ref.artifact_sha256());
  }
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

absl::StatusOr<ExpectedUpload> Federation::BeginUpload(const Caller& caller,
                                                       const v1::UpdateMetadata& metadata) {
  RETURN_IF_ERROR(AuthorizeSite(caller));
  if (!metadata.site().empty() && metadata.site() != caller.name) {
    return absl::PermissionDeniedError(absl::StrCat(
        "site '", caller.name, "' cannot upload on behalf of '", metadata.site(), "'"));
  }
  absl::MutexLock lock(&mu_);
  if (!sites_.HasSession(caller.name)) {
    return absl::FailedPreconditionError(absl::StrCat("site '", caller.name, "' is not connected"));
  }
  ASSIGN_OR_RETURN(RoundManager * run, ActiveRun(metadata.run_id()));
  return run->ExpectedUpdate(caller.name, metadata);
}

absl::StatusOr<std::unique_ptr<UploadSession>> Federation::OpenUpload(
    const Caller& caller, const v1::UpdateMetadata& metadata) {
  absl::StatusOr<ExpectedUpload> expected = BeginUpload(caller, metadata);
  if (!expected.ok()) {
    RecordUploadRefused(caller, metadata, expected.status());
    return expected.status();
  }
  return std::make_unique<UploadSession>(
      this, options_.env, options_.faults,
      UploadLimits{options_.spool_dir, options_.max_update_bytes}, caller, metadata,
      *std::move(expected), &phase_times_);
}

absl::StatusOr<v1::UploadReceipt> Federation::CompleteUpload(const Caller& caller,
                                                             ReceivedUpdate update) {
  absl::MutexLock lock(&mu_);
  auto run = ActiveRun(update.metadata.run_id());
  if (!run.ok()) {
    (void)options_.env->RemoveFile(update.path);
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
    if (std::optional<v1::SignedAuditHead> head = options_.audit->SignedHead()) {
      *receipt.mutable_audit_head() = *std::move(head);
    }
  }
  return receipt;
}

absl::Status Federation::CheckArtifacts(const v1::RunSpec& spec) const {
  auto check = [&](const std::string& sha, const char* what, bool model_file) -> absl::Status {
    if (sha.empty()) return absl::OkStatus();
    auto path = models_->PathFor(sha);
    if (absl::IsNotFound(path.status())) {
      return absl::FailedPreconditionError(
          absl::StrCat("the ", what, " ", ShortHash(sha),
                       " is not on this coordinator; upload it first (fedmi run start does)"));
    }
    RETURN_IF_ERROR(path.status());
    ASSIGN_OR_RETURN(auto reader, BundleFileReader::Open(*path));
    const std::vector<TensorSpec>& specs = reader->specs();
    // As sites read it (FileOfBundle): one uint8 tensor of rank 1.
    const bool is_file =
        specs.size() == 1 && specs[0].dtype == DType::kUInt8 && specs[0].shape.size() == 1;
    bool all_float = true;
    for (const TensorSpec& tensor : specs) all_float = all_float && tensor.dtype == DType::kFloat32;
    if (model_file ? !is_file : !all_float) {
      return absl::InvalidArgumentError(absl::StrCat(
          "artifact ", ShortHash(sha), " is not ",
          model_file ? "a model file (one uint8 tensor)" : "a set of float32 weights"));
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(check(spec.transfer().init_weights_sha256(), "initial weights", false));
  return check(spec.model_file_sha256(), "model file", true);
}

absl::StatusOr<std::unique_ptr<ArtifactUpload>> Federation::OpenArtifactUpload(
    const Caller& caller) {
  if (caller.role != PartyRole::kAdmin) {
    RecordDenied(caller.name, "UploadArtifact", "only an admin may upload artifacts");
    return absl::PermissionDeniedError("only an admin may upload artifacts");
  }
  RETURN_IF_ERROR(CheckNotRevoked(caller));
  return std::make_unique<ArtifactUpload>(models_);
}

absl::StatusOr<int64_t> Federation::StartRun(const Caller& caller, v1::RunSpec spec) {
  if (caller.role != PartyRole::kAdmin) {
    RecordDenied(caller.name, "StartRun", "only an admin may start a run");
    return absl::PermissionDeniedError("only an admin may start a run");
  }
  RETURN_IF_ERROR(ValidateRunSpec(&spec));
  RETURN_IF_ERROR(CheckArtifacts(spec));
  if (spec.secure_aggregation() && options_.ca_pem.empty()) {
    return absl::FailedPreconditionError(
        "secure aggregation needs mutual TLS: sites sign their key advertisements with their "
        "certificates, and this coordinator runs --insecure");
  }
  if (HasDifferentialPrivacy(spec)) {
    int64_t total = 0, sites_with_data = 0;
    {
      absl::MutexLock lock(&mu_);
      for (const std::string& site : sites_.ConnectedSites()) {
        const int64_t examples = sites_.TrainExamples(site);
        if (examples > 0) {
          total += examples;
          ++sites_with_data;
        }
      }
    }
    // Fixed before the run is stored: the spec every site checks, and its
    // hash, already say what each round costs.
    RETURN_IF_ERROR(privacy::CompleteDpSettings(&spec,
                                                sites_with_data > 0 ? total / sites_with_data : 0,
                                                static_cast<int>(sites_with_data)));
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
  v1::RunStatus status = StoredRunStatus(run, rounds, parts);
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
  if (caller.role != PartyRole::kAdmin) {
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
    if (caller.role != PartyRole::kSite) {
      return absl::PermissionDeniedError(absl::StrCat("'", caller.name, "' holds the ",
                                                      PartyRoleName(caller.role),
                                                      " role; this call needs a site"));
    }
    absl::MutexLock lock(&mu_);
    return sites_.CheckNotRevoked(caller.name);
  }();
  if (!status.ok()) RecordDenied(caller.name, "site call", std::string(status.message()));
  return status;
}

absl::Status Federation::RevokeSite(const Caller& caller, const std::string& site,
                                    const std::string& reason) {
  return Revoke(caller, site, PartyRole::kSite, reason).status();
}

absl::StatusOr<std::vector<v1::SiteInfo>> Federation::ListSites() {
  absl::MutexLock lock(&mu_);
  return sites_.List();
}

absl::Status Federation::WatchRun(const Caller& caller, int64_t run_id,
                                  const std::function<bool(const v1::RunStatus&)>& write,
                                  const std::function<bool()>& cancelled) {
  uint64_t version = this->version();
  std::string last_sent;
  while (!cancelled()) {
    // Asked at every wake-up: a revocation bumps the version, so a revoked
    // watcher learns no more than it knew when it was revoked.
    if (absl::Status allowed = CheckNotRevoked(caller); !allowed.ok()) {
      RecordDenied(caller.name, "WatchRun", std::string(allowed.message()));
      return allowed;
    }
    ASSIGN_OR_RETURN(v1::RunStatus status, GetRun(run_id));
    std::string serialized = status.SerializeAsString();
    if (serialized != last_sent) {
      if (!write(status)) return absl::OkStatus();
      last_sent = std::move(serialized);
    }
    if (IsTerminalRunState(status.state())) return absl::OkStatus();
    WaitForChange(&version, absl::Seconds(1));
  }
  return absl::CancelledError("watch cancelled");
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

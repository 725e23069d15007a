// Caller: who is calling the coordinator's core, as the gRPC authenticator
// established it from the peer certificate (CN names the party, OU carries
// its PartyRole). The core never reads identity from a request field. A
// plain value; copy it freely.
#ifndef FEDMI_COORDINATOR_CALLER_H_
#define FEDMI_COORDINATOR_CALLER_H_

#include <string>

#include "common/crypto/identity.h"

namespace fedmi {

struct Caller {
  std::string name;
  PartyRole role = PartyRole::kAdmin;
  double certificate_expires = 0;  // unix seconds; 0 without TLS
  std::string certificate_pem;     // the TLS peer certificate; empty without TLS
  std::string certificate_serial;  // its serial (CertificateInfo::serial_hex); empty without TLS
};

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_CALLER_H_

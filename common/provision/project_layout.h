// Where things live in a project directory, the folder `fedmi provision`
// manages on the CA's machine:
//   ca/ca.key            the CA's private key (0600); never leaves this machine
//   ca/ca.crt            the CA certificate every party trusts
//   issued.json          every issued party, in order of issue
//   project.json         where parties reach the coordinator, once one is added
//   kits/<name>/         what to copy to the party's machine
//   .provision.lock      serialises `fedmi provision` processes
#ifndef FEDMI_COMMON_PROVISION_PROJECT_LAYOUT_H_
#define FEDMI_COMMON_PROVISION_PROJECT_LAYOUT_H_

#include <string>

namespace fedmi::project_layout {

inline std::string CaDir(const std::string& dir) { return dir + "/ca"; }
inline std::string CaKeyPath(const std::string& dir) { return dir + "/ca/ca.key"; }
inline std::string CaCertPath(const std::string& dir) { return dir + "/ca/ca.crt"; }
inline std::string IndexPath(const std::string& dir) { return dir + "/issued.json"; }
inline std::string ProjectPath(const std::string& dir) { return dir + "/project.json"; }
inline std::string KitsDir(const std::string& dir) { return dir + "/kits"; }
// Relative to the project directory, as recorded in issued.json.
inline std::string KitRelativePath(const std::string& name) { return "kits/" + name; }
inline std::string LockPath(const std::string& dir) { return dir + "/.provision.lock"; }

}  // namespace fedmi::project_layout

#endif  // FEDMI_COMMON_PROVISION_PROJECT_LAYOUT_H_

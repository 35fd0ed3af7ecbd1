#include "support/netns_lab.hpp"

#include "support/process.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace testing_support {

namespace {

void must(const std::vector<std::string>& argv) {
    const auto r = run(argv, {}, std::chrono::seconds(30));
    if (r.exit_code != 0) {
        std::string cmd;
        for (const auto& a : argv) cmd += a + " ";
        throw std::runtime_error("netns lab: '" + cmd + "' failed: " + r.output);
    }
}

}  // namespace

std::string NetnsLab::unavailable() {
    if (::geteuid() != 0) return "network namespaces need root";
    for (const char* tool : {"/usr/sbin/ip", "/usr/sbin/nft"})
        if (!std::filesystem::exists(tool)) return std::string(tool) + " is missing (scripts/install-deps installs it)";
    return {};
}

NetnsLab::NetnsLab(const std::string& tag) {
    const std::string id = tag.substr(0, 3) + std::to_string(::getpid() % 100000);
    client_ = "sc-" + id + "-c";
    node_ = "sc-" + id + "-n";
    server_ = "sc-" + id + "-s";
    // Interface names are at most 15 characters.
    client_if_ = "c" + id;
    node_client_if_ = "nc" + id;
    node_server_if_ = "ns" + id;
    server_if_ = "s" + id;
    remove();
    try {
        for (const auto* ns : {&client_, &node_, &server_}) {
            must({"ip", "netns", "add", *ns});
            must({"ip", "-n", *ns, "link", "set", "lo", "up"});
        }
        must({"ip", "link", "add", client_if_, "netns", client_, "type", "veth", "peer", "name", node_client_if_, "netns",
              node_});
        must({"ip", "link", "add", server_if_, "netns", server_, "type", "veth", "peer", "name", node_server_if_, "netns",
              node_});
        must({"ip", "-n", client_, "addr", "add", std::string(kClientAddr) + "/24", "dev", client_if_});
        must({"ip", "-n", node_, "addr", "add", std::string(kNodeClientSide) + "/24", "dev", node_client_if_});
        must({"ip", "-n", node_, "addr", "add", std::string(kNodeServerSide) + "/24", "dev", node_server_if_});
        must({"ip", "-n", server_, "addr", "add", std::string(kServerAddr) + "/24", "dev", server_if_});
        must({"ip", "-n", client_, "link", "set", client_if_, "up"});
        must({"ip", "-n", node_, "link", "set", node_client_if_, "up"});
        must({"ip", "-n", node_, "link", "set", node_server_if_, "up"});
        must({"ip", "-n", server_, "link", "set", server_if_, "up"});
        must({"ip", "-n", client_, "route", "add", "default", "via", kNodeClientSide});
        must({"ip", "-n", server_, "route", "add", "default", "via", kNodeServerSide});
        must({"ip", "netns", "exec", node_, "sysctl", "-qw", "net.ipv4.ip_forward=1"});
    } catch (...) {
        remove();
        throw;
    }
}

NetnsLab::~NetnsLab() { remove(); }

void NetnsLab::remove() const {
    // Deleting a namespace deletes the veth ends in it, and with them their peers.
    for (const auto* ns : {&client_, &node_, &server_})
        if (std::filesystem::exists("/run/netns/" + *ns)) run({"ip", "netns", "del", *ns}, {}, std::chrono::seconds(30));
}

void NetnsLab::in_node(const std::vector<std::string>& argv) const {
    std::vector<std::string> all = in(node_);
    all.insert(all.end(), argv.begin(), argv.end());
    must(all);
}

void NetnsLab::nft(const std::string& ruleset) const {
    const auto file = make_temp_dir("splitca-nft") / "rules.nft";
    std::ofstream(file) << ruleset;
    must({"ip", "netns", "exec", node_, "nft", "-f", file.string()});
    std::filesystem::remove_all(file.parent_path());
}

}  // namespace testing_support

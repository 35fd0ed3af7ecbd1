#pragma once
// Network namespaces a test makes for itself, removed by the destructor (and any left under
// the same names by an earlier, killed run are removed first): a client's, the node's and a
// server's, joined by veth links through the node's namespace, which routes between them.
// Traffic is steered to the node by nftables rules the test loads into its namespace.
//
//   client 10.201.1.2/24 --- 10.201.1.1 [node] 10.201.2.1 --- 10.201.2.2/24 server
//
// Addresses repeat between labs (each lab's namespaces are separate networks); the names
// carry the test process's pid, so labs of tests running in parallel do not meet. Needs
// root, iproute2 and nftables (CI runs as root; scripts/install-deps installs them).

#include <string>
#include <vector>

namespace testing_support {

class NetnsLab {
public:
    static constexpr const char* kClientAddr = "10.201.1.2";
    static constexpr const char* kNodeClientSide = "10.201.1.1";
    static constexpr const char* kNodeServerSide = "10.201.2.1";
    static constexpr const char* kServerAddr = "10.201.2.2";

    // `tag`: a few letters that tell this lab from others of the same process. Throws with
    // the failing command's output.
    explicit NetnsLab(const std::string& tag);
    ~NetnsLab();
    NetnsLab(const NetnsLab&) = delete;
    NetnsLab& operator=(const NetnsLab&) = delete;

    const std::string& client() const { return client_; }
    const std::string& node() const { return node_; }
    const std::string& server() const { return server_; }
    // The node's interface towards the clients (for an nftables iifname match).
    const std::string& node_client_if() const { return node_client_if_; }
    // argv prefix that runs a program in namespace `ns`.
    static std::vector<std::string> in(const std::string& ns) { return {"ip", "netns", "exec", ns}; }
    // Loads an nftables ruleset (nft -f syntax) into the node's namespace.
    void nft(const std::string& ruleset) const;
    // Runs a command in the node's namespace (ip rule, ip route); throws when it fails.
    void in_node(const std::vector<std::string>& argv) const;

    // Empty when the lab can be built here, else why not (not root, no ip or nft).
    static std::string unavailable();

private:
    void remove() const;
    std::string client_, node_, server_, node_client_if_, node_server_if_, client_if_, server_if_;
};

}  // namespace testing_support

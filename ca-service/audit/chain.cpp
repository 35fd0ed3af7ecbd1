#include "audit/chain.hpp"

#include "ossl/encoding.hpp"

namespace ca::audit {

namespace {

std::string seq_text(std::uint64_t seq) {
    return std::to_string(seq);
}

// Only the shapes the writer produces: strings, non-negative integers and arrays of strings.
// Anything else is a modification, and refusing it also keeps nesting (and recursion) flat.
bool has_record_shape(const Json& j) {
    if (!j.is_object()) return false;
    for (const auto& [key, value] : j.items()) {
        if (value.is_string() || value.is_number_unsigned()) continue;
        if (value.is_array()) {
            for (const auto& element : value)
                if (!element.is_string()) return false;
            continue;
        }
        return false;
    }
    return true;
}

const std::string* string_field(const Json& j, const char* name) {
    auto it = j.find(name);
    return (it != j.end() && it->is_string()) ? it->get_ptr<const std::string*>() : nullptr;
}

std::optional<std::uint64_t> unsigned_field(const Json& j, const char* name) {
    auto it = j.find(name);
    if (it == j.end() || !it->is_number_unsigned()) return std::nullopt;
    return it->get<std::uint64_t>();
}

std::optional<Sha256> hash_field(const Json& j, const char* name) {
    const std::string* s = string_field(j, name);
    return s ? parse_hash(*s) : std::nullopt;
}

Finding other(std::string message) {
    return {ChainProblem::kOther, std::move(message)};
}

}  // namespace

std::string RecordLocation::describe() const {
    return file + " line " + std::to_string(line);
}

ParseResult parse_record(std::string_view line, const RecordLocation& where) {
    ParseResult out;
    Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !has_record_shape(j)) {
        out.problem = where.describe() +
                      ": not a valid audit record (broken JSON or unexpected fields) — "
                      "record modified or corrupted";
        return out;
    }
    if (canonical(j) != line) {
        out.problem = where.describe() +
                      ": record is not in canonical form (reformatted or edited) — "
                      "record modified";
        return out;
    }
    const auto seq = unsigned_field(j, field::kSeq);
    const std::string* type = string_field(j, field::kType);
    const auto prev = hash_field(j, field::kPrev);
    const auto hash = hash_field(j, field::kHash);
    const char* missing = !seq                             ? field::kSeq
                          : !type                          ? field::kType
                          : !string_field(j, field::kTime) ? field::kTime
                          : !prev                          ? field::kPrev
                          : !hash                          ? field::kHash
                                                           : nullptr;
    if (missing != nullptr) {
        out.problem =
            where.describe() + ": field \"" + missing + "\" is missing or malformed — record modified";
        return out;
    }
    j.erase(field::kHash);
    if (record_hash(*prev, canonical(j)) != *hash) {
        out.problem =
            "record " + seq_text(*seq) + " (" + where.describe() + "): hash mismatch — record modified";
        return out;
    }
    out.record = ParsedRecord{std::move(j), *type, *seq, *prev, *hash};
    return out;
}

std::optional<std::string> check_checkpoint_signature(const ParsedRecord& r, const CheckpointVerifier& sig,
                                                      const std::string& what) {
    const auto tree_size = unsigned_field(r.body, field::kTreeSize);
    const auto head = hash_field(r.body, field::kHead);
    const auto root = hash_field(r.body, field::kMerkleRoot);
    const std::string* signed_at = string_field(r.body, field::kSignedAt);
    const std::string* signature_b64 = string_field(r.body, field::kSignature);
    const std::string* signer = string_field(r.body, field::kSignerSpki);
    if (!tree_size || !head || !root || !signed_at || !signature_b64 || !signer)
        return what + ": a checkpoint field is missing or malformed — record modified";
    if (*signer != sig.spki_sha256())
        return what + " was signed by the key with SPKI SHA-256 " + *signer +
               ", not by the audit certificate's key (" + sig.spki_sha256() +
               "): wrong --cert, or a forged checkpoint";
    const auto signature = ossl::from_base64(*signature_b64);
    if (!signature || !sig.verify(statement_text({*tree_size, *head, *root, *signed_at}), *signature))
        return what + ": signature does not verify with the audit certificate — checkpoint forged or altered";
    return std::nullopt;
}

std::optional<std::string> ChainState::start_at_rotation(const ParsedRecord& r, const RecordLocation& where) {
    if (r.type != record_type::kRotation)
        return where.describe() + ": a rotated log file must start with a rotation record, found a " +
               r.type + " record (seq " + seq_text(r.seq) + ")";
    std::vector<Sha256> roots;
    auto it = r.body.find(field::kMerkleFrontier);
    if (it != r.body.end() && it->is_array()) {
        for (const auto& h : *it) {
            auto parsed = parse_hash(h.get<std::string>());
            if (!parsed) return where.describe() + ": rotation record has a malformed merkle_frontier";
            roots.push_back(*parsed);
        }
    }
    auto frontier = MerkleFrontier::from_parts(r.seq, std::move(roots));
    if (!frontier)
        return where.describe() + ": rotation record's merkle_frontier does not fit seq " + seq_text(r.seq);
    first_seq_ = next_seq_ = r.seq;
    head_ = base_head_ = r.prev;
    base_ = std::move(*frontier);
    window_.clear();
    return std::nullopt;
}

Finding ChainState::accept(const ParsedRecord& r, std::string_view line, const RecordContext& c,
                           const CheckpointVerifier* signatures) {
    if (r.seq > next_seq_) {
        if (next_seq_ == 0)
            return {ChainProblem::kSeqAhead, "the log starts at seq " + seq_text(r.seq) + " (" +
                                                 c.where.describe() +
                                                 ") instead of 0: the first records or files were deleted"};
        return {ChainProblem::kSeqAhead, "seq jumps from " + seq_text(next_seq_ - 1) + " to " +
                                             seq_text(r.seq) + " at " + c.where.describe() +
                                             ": a record was deleted"};
    }
    if (r.seq < next_seq_)
        return {ChainProblem::kSeqBehind, "record at " + c.where.describe() + " has seq " + seq_text(r.seq) +
                                              " after " + seq_text(next_seq_ - 1) +
                                              ": records reordered or inserted"};
    if (r.prev != head_) {
        return other("record " + seq_text(r.seq) + " (" + c.where.describe() +
                     "): its prev does not match the hash of " +
                     (r.seq == 0 ? std::string("the empty log") : "record " + seq_text(r.seq - 1)) +
                     " — the chain is broken (a record was replaced or recomputed)");
    }
    if (c.first_in_file && r.seq != 0 && r.type != record_type::kRotation)
        return other(c.where.describe() + ": a rotated log file must start with a rotation record, found a " +
                     r.type + " record (seq " + seq_text(r.seq) + ")");

    Finding f = r.type == record_type::kCheckpoint ? check_checkpoint(r, c, signatures)
                : r.type == record_type::kRotation ? check_rotation(r, c)
                                                   : check_payload(r, c);
    if (f) return f;

    window_.emplace_back(merkle_leaf_hash(ossl::as_bytes(line)), r.hash);
    head_ = r.hash;
    ++next_seq_;
    if (r.type == record_type::kCheckpoint) {
        ++checkpoints_;
        last_checkpoint_seq_ = r.seq;
        records_since_checkpoint_ = 0;
        checkpoint_hashes_[r.seq] = r.hash;
    } else {
        ++records_since_checkpoint_;
    }
    return {};
}

Finding ChainState::check_checkpoint(const ParsedRecord& r, const RecordContext& c,
                                     const CheckpointVerifier* sig) {
    const std::string what = "checkpoint at seq " + seq_text(r.seq) + " (" + c.where.describe() + ")";
    const auto tree_size = unsigned_field(r.body, field::kTreeSize);
    const auto head = hash_field(r.body, field::kHead);
    const auto root = hash_field(r.body, field::kMerkleRoot);
    const std::string* signed_at = string_field(r.body, field::kSignedAt);
    const std::string* signature_b64 = string_field(r.body, field::kSignature);
    const std::string* signer = string_field(r.body, field::kSignerSpki);
    if (!tree_size || !head || !root || !signed_at || !signature_b64 || !signer)
        return other(what + ": a checkpoint field is missing or malformed — record modified");
    if (*tree_size > r.seq)
        return other(what + " claims to cover " + seq_text(*tree_size) + " records, more than precede it");
    if (*tree_size < base_.size())
        return other(what + " covers " + seq_text(*tree_size) +
                     " records, fewer than the checkpoint or rotation before it (" + seq_text(base_.size()) +
                     ")");
    if (head_at(*tree_size) != *head)
        return other(what + ": head does not match the hash of record " + seq_text(*tree_size - 1) +
                     " — records before the checkpoint were changed");
    if (frontier_at(*tree_size).root() != *root)
        return other(what + ": merkle root does not match records 0.." + seq_text(*tree_size - 1) +
                     " — records before the checkpoint were changed");
    if (sig != nullptr) {
        if (auto problem = check_checkpoint_signature(r, *sig, what)) return other(std::move(*problem));
    }
    last_signed_tree_size_ = *tree_size;
    advance_base(*tree_size);
    return {};
}

Finding ChainState::check_rotation(const ParsedRecord& r, const RecordContext& c) {
    const std::string what = "rotation record " + seq_text(r.seq) + " (" + c.where.describe() + ")";
    if (!c.first_in_file) return other(what + " is not the first record of its file — records inserted");
    const std::string* previous = string_field(r.body, field::kPreviousFile);
    const auto tree_size = unsigned_field(r.body, field::kTreeSize);
    auto it = r.body.find(field::kMerkleFrontier);
    if (!previous || !tree_size || it == r.body.end() || !it->is_array())
        return other(what + ": a rotation field is missing or malformed — record modified");
    if (c.previous_file && *previous != *c.previous_file)
        return other(what + " continues " + *previous + ", but the file before it is " + *c.previous_file +
                     ": a log file was removed or renamed");
    if (*tree_size != r.seq) return other(what + ": tree_size " + seq_text(*tree_size) + " is not its seq");
    const MerkleFrontier expected = frontier_at(r.seq);
    bool same = it->size() == expected.subtree_roots().size();
    for (std::size_t i = 0; same && i < it->size(); ++i)
        same = parse_hash((*it)[i].get<std::string>()) == expected.subtree_roots()[i];
    if (!same)
        return other(what + ": merkle_frontier does not match the records before it — record modified");
    advance_base(r.seq);
    return {};
}

Finding ChainState::check_payload(const ParsedRecord& r, const RecordContext& c) {
    const std::string what = "record " + seq_text(r.seq) + " (" + c.where.describe() + ")";
    if (r.type == record_type::kDecision) {
        const std::string* d = string_field(r.body, field::kDecision);
        auto names = r.body.find(field::kNames);
        if (!d || (*d != decision::kIssued && *d != decision::kDenied) || names == r.body.end() ||
            !names->is_array() || !string_field(r.body, field::kNodeName) ||
            !string_field(r.body, field::kSerial))
            return other(what + ": decision fields are missing or malformed — record modified");
        return {};
    }
    if (r.type == record_type::kService) {
        if (!string_field(r.body, field::kEvent))
            return other(what + ": service record without event — record modified");
        return {};
    }
    return other(what + ": unknown record type \"" + r.type + "\"");
}

std::optional<Sha256> ChainState::checkpoint_hash(std::uint64_t seq) const {
    auto it = checkpoint_hashes_.find(seq);
    if (it == checkpoint_hashes_.end()) return std::nullopt;
    return it->second;
}

MerkleFrontier ChainState::frontier_at(std::uint64_t size) const {
    MerkleFrontier f = base_;
    for (std::uint64_t i = base_.size(); i < size; ++i) f.append(window_[i - base_.size()].first);
    return f;
}

Sha256 ChainState::head_at(std::uint64_t size) const {
    return size == base_.size() ? base_head_ : window_[size - base_.size() - 1].second;
}

void ChainState::advance_base(std::uint64_t size) {
    const std::uint64_t old_base = base_.size();
    const Sha256 new_head = head_at(size);
    MerkleFrontier f = frontier_at(size);
    window_.erase(window_.begin(), window_.begin() + static_cast<std::ptrdiff_t>(size - old_base));
    base_ = std::move(f);
    base_head_ = new_head;
}

}  // namespace ca::audit

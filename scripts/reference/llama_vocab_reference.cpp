// Dev-only: llama.cpp's own tokenize / detokenize of the texts of one ggml-vocab-*.gguf
// test pair, for tests/fixtures/llama-vocab/ (run by llama_vocab_reference.py, which
// builds this against llama.cpp's libllama and writes the fixture).
//
// For each text of <vocab>.inp (split as tests/test-tokenizer-0.cpp splits it) prints one
// tab-separated line:
//   index, ids(add_special=0, parse_special=0), ids(add_special=1, parse_special=1),
//   hex(detokenize(ids_a, special=1)), hex(detokenize(ids_b, special=0)),
//   hex(detokenize(ids_b, special=1))
// with ids space-separated and the texts as hex bytes (they need not be UTF-8).
#include "llama.h"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

static std::vector<llama_token> tokenize(const llama_vocab * v, const std::string & s, bool add, bool parse) {
    std::vector<llama_token> ids(s.size() + 8);
    int n = llama_tokenize(v, s.data(), (int) s.size(), ids.data(), (int) ids.size(), add, parse);
    if (n < 0) {
        ids.resize(-n);
        n = llama_tokenize(v, s.data(), (int) s.size(), ids.data(), (int) ids.size(), add, parse);
    }
    ids.resize(n);
    return ids;
}

// common_detokenize: remove_special = false, unparse_special = special.
static std::string detokenize(const llama_vocab * v, const std::vector<llama_token> & ids, bool special) {
    std::string out(ids.size() * 16 + 16, '\0');
    int n = llama_detokenize(v, ids.data(), (int) ids.size(), &out[0], (int) out.size(), false, special);
    if (n < 0) {
        out.resize(-n);
        n = llama_detokenize(v, ids.data(), (int) ids.size(), &out[0], (int) out.size(), false, special);
    }
    out.resize(n);
    return out;
}

static std::string hex(const std::string & s) {
    static const char * d = "0123456789abcdef";
    std::string h;
    for (unsigned char c : s) {
        h += d[c >> 4];
        h += d[c & 15];
    }
    return h;
}

static std::string join(const std::vector<llama_token> & ids) {
    std::string s;
    for (size_t i = 0; i < ids.size(); ++i) {
        s += (i ? " " : "") + std::to_string(ids[i]);
    }
    return s;
}

int main(int argc, char ** argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s ggml-vocab-X.gguf\n", argv[0]);
        return 1;
    }
    const std::string path = argv[1];
    llama_log_set([](ggml_log_level, const char *, void *) {}, nullptr);
    llama_backend_init();
    auto mp = llama_model_default_params();
    mp.vocab_only = true;
    llama_model * model = llama_model_load_from_file(path.c_str(), mp);
    if (!model) {
        fprintf(stderr, "cannot load %s\n", path.c_str());
        return 1;
    }
    const llama_vocab * v = llama_model_get_vocab(model);

    std::ifstream f(path + ".inp");
    std::stringstream ss;
    ss << f.rdbuf();
    const std::string raw = ss.str();
    const std::string sep = "\n__ggml_vocab_test__\n";
    std::vector<std::string> texts;
    size_t pos = 0;
    while (pos < raw.size()) {
        size_t next = raw.find(sep, pos);
        if (next == std::string::npos) {
            texts.push_back(raw.substr(pos));
            break;
        }
        texts.push_back(raw.substr(pos, next - pos));
        pos = next + sep.size();
    }
    for (size_t i = 0; i < texts.size(); ++i) {
        auto a = tokenize(v, texts[i], false, false);
        auto b = tokenize(v, texts[i], true, true);
        printf("%zu\t%s\t%s\t%s\t%s\t%s\n", i, join(a).c_str(), join(b).c_str(), hex(detokenize(v, a, true)).c_str(),
               hex(detokenize(v, b, false)).c_str(), hex(detokenize(v, b, true)).c_str());
    }
    llama_model_free(model);
    llama_backend_free();
    return 0;
}

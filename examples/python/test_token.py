"""The Python minter against README's test vector, and the key file reader.

    /usr/bin/python3 -m unittest discover -s examples/python -v
"""
import os
import tempfile
import unittest

import rexec_token

# README, "Keys and the token": the test vector, checked by Go's
# interceptors/token_test.go too.
VECTOR_SECRET_B64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
VECTOR_TOKEN = ("rexec-hmac-sha256 v2;kid=ops;ts=1767225600;nonce=oKGio6SlpqeoqaqrrK2urw;"
                "sig=TspnLXu0GJslrqDLZ0j0crnDRODLLNv3aQD4SmDAw_k")


class MintTest(unittest.TestCase):
    def test_readme_vector(self):
        got = rexec_token.mint("ops", bytes(range(32)), "/rexec.v1.ExecService/Run",
                               "127.0.0.1:50051", ts=1767225600, nonce=bytes(range(0xA0, 0xB0)))
        self.assertEqual(got, VECTOR_TOKEN)

    def test_other_method_other_signature(self):
        got = rexec_token.mint("ops", bytes(range(32)), "/rexec.v1.ExecService/Session",
                               "127.0.0.1:50051", ts=1767225600, nonce=bytes(range(0xA0, 0xB0)))
        self.assertNotEqual(got.split(";sig=")[1], VECTOR_TOKEN.split(";sig=")[1])

    def test_other_authority_other_signature(self):
        got = rexec_token.mint("ops", bytes(range(32)), "/rexec.v1.ExecService/Run",
                               "127.0.0.2:50051", ts=1767225600, nonce=bytes(range(0xA0, 0xB0)))
        self.assertNotEqual(got.split(";sig=")[1], VECTOR_TOKEN.split(";sig=")[1])

    def test_fresh_nonce_per_token(self):
        a = rexec_token.mint("ops", bytes(range(32)), "/m", "h:1")
        b = rexec_token.mint("ops", bytes(range(32)), "/m", "h:1")
        self.assertNotEqual(a, b)
        self.assertRegex(a, r"^rexec-hmac-sha256 v2;kid=ops;ts=[1-9][0-9]*;nonce=[A-Za-z0-9_-]{22};sig=[A-Za-z0-9_-]{43}$")


class LoadKeyTest(unittest.TestCase):
    def write(self, text, mode=0o600):
        fd, path = tempfile.mkstemp()
        self.addCleanup(os.remove, path)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def test_first_key_or_named(self):
        path = self.write("# comment\n\nops %s exec\nload %s echo,replay user=x\n"
                          % (VECTOR_SECRET_B64, VECTOR_SECRET_B64))
        self.assertEqual(rexec_token.load_key(path), ("ops", bytes(range(32))))
        self.assertEqual(rexec_token.load_key(path, "load")[0], "load")

    def test_refusals_name_the_fix(self):
        for text, mode, want in [
            ("ops %s\n" % VECTOR_SECRET_B64, 0o644, "chmod 600"),
            ("ops not*base64\n", 0o600, "not standard base64"),
            ("ops\n", 0o600, "line 1"),
            ("# only a comment\n", 0o600, "no keys"),
        ]:
            with self.subTest(want=want):
                with self.assertRaisesRegex(rexec_token.KeyFileError, want):
                    rexec_token.load_key(self.write(text, mode))
        with self.assertRaisesRegex(rexec_token.KeyFileError, "no key 'x'"):
            rexec_token.load_key(self.write("ops %s\n" % VECTOR_SECRET_B64), "x")
        with self.assertRaisesRegex(rexec_token.KeyFileError, "--key-file"):
            rexec_token.load_key("/nonexistent/keys")


if __name__ == "__main__":
    unittest.main()

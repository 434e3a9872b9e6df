package mail

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
)

// DKIMOptions turns on DKIM signing of every message built by Prepared.
type DKIMOptions struct {
	Domain   string        // d=, normally the From domain (DMARC alignment)
	Selector string        // s=: the key is published at <selector>._domainkey.<domain>
	Key      crypto.Signer // *rsa.PrivateKey (2048 bits or more) or ed25519.PrivateKey
}

// ReadDKIMKey reads a PEM private key for DKIM: RSA (PKCS #1 or #8) or
// Ed25519 (PKCS #8).
func ReadDKIMKey(path string) (crypto.Signer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dkim key: %w", err)
	}
	k, err := ParseDKIMKey(raw)
	if err != nil {
		return nil, fmt.Errorf("dkim key %s: %w", path, err)
	}
	return k, nil
}

// ParseDKIMKey parses a PEM private key: RSA (PKCS #1 or #8) or Ed25519
// (PKCS #8).
func ParseDKIMKey(pemBytes []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		return k, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		switch k := k.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case ed25519.PrivateKey:
			return k, nil
		}
		return nil, fmt.Errorf("PKCS #8 key of type %T: want RSA or Ed25519", k)
	}
	return nil, fmt.Errorf("PEM block %q: want RSA PRIVATE KEY or PRIVATE KEY", block.Type)
}

func newDKIMSigner(o *DKIMOptions) (*dkimSigner, error) {
	if strings.TrimSpace(o.Domain) == "" || strings.TrimSpace(o.Selector) == "" {
		return nil, errors.New("mail: dkim needs domain and selector")
	}
	switch k := o.Key.(type) {
	case nil:
		return nil, errors.New("mail: dkim private key is missing")
	case *rsa.PrivateKey:
		if k.N.BitLen() < 1024 {
			return nil, fmt.Errorf("mail: dkim RSA key has %d bits: receivers want 1024 or more (2048 advised)", k.N.BitLen())
		}
	case ed25519.PrivateKey:
	default:
		return nil, fmt.Errorf("mail: dkim key of type %T: want RSA or Ed25519", k)
	}
	return &dkimSigner{opts: dkim.SignOptions{
		Domain: strings.TrimSpace(o.Domain), Selector: strings.TrimSpace(o.Selector), Signer: o.Key,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationSimple,
		HeaderKeys:             DKIMSignedHeaders,
	}}, nil
}

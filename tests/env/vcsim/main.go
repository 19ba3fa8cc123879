// vcsim for the virtfleet.virt tests: govmomi's vCenter simulator (simulator.VPX)
// with one datacenter, a cluster of two hosts, one standalone host, two shared
// datastores, the standard port group "VM Network" and one distributed port group.
//
// It listens on loopback only, over TLS with a CA and server certificate it makes at
// start (written to -dir as ca.pem), and accepts exactly one user name and password
// (the password is read from -password-file, never from the command line), so a
// wrong password is refused as vCenter would refuse it.
//
// Built by tests/env/vcsim-up.sh with Debian's golang-go against Debian's
// golang-github-vmware-govmomi-dev in GOPATH mode (GOPATH=/usr/share/gocode GO111MODULE=off).
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io/ioutil"
	"log"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
)

func writeFile(path string, data []byte, mode os.FileMode) {
	tmp := path + ".tmp"
	if err := ioutil.WriteFile(tmp, data, mode); err != nil {
		log.Fatalf("writing %s: %v", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		log.Fatalf("renaming %s: %v", tmp, err)
	}
}

func keyID(pub *ecdsa.PublicKey) []byte {
	sum := sha1.Sum(elliptic.Marshal(pub.Curve, pub.X, pub.Y))
	return sum[:]
}

// makeCerts creates a CA and a server certificate for 127.0.0.1/localhost signed by it.
func makeCerts(dir string) tls.Certificate {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: "virtfleet test vcsim CA", Organization: []string{"virtfleet.virt tests"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(30 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		SubjectKeyId:          keyID(&caKey.PublicKey),
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		log.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	srv := &x509.Certificate{
		SerialNumber:   big.NewInt(now.UnixNano() + 1),
		Subject:        pkix.Name{CommonName: "localhost", Organization: []string{"virtfleet.virt tests"}},
		NotBefore:      now.Add(-time.Hour),
		NotAfter:       now.Add(30 * 24 * time.Hour),
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:       []string{"localhost"},
		IPAddresses:    []net.IP{net.ParseIP("127.0.0.1")},
		SubjectKeyId:   keyID(&srvKey.PublicKey),
		AuthorityKeyId: ca.SubjectKeyId,
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		log.Fatal(err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	srvPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER})
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		log.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	writeFile(filepath.Join(dir, "ca.pem"), caPEM, 0644)
	writeFile(filepath.Join(dir, "server.pem"), srvPEM, 0644)
	cert, err := tls.X509KeyPair(srvPEM, keyPEM)
	if err != nil {
		log.Fatal(err)
	}
	return cert
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "loopback address:port to listen on (port 0: any free port)")
	dir := flag.String("dir", "", "state directory: ca.pem, server.pem and env.json are written there")
	username := flag.String("username", "vft-admin", "the only user name accepted")
	passwordFile := flag.String("password-file", "", "file holding the only password accepted")
	machines := flag.Int("machines", 2, "VMs the model creates per cluster and per standalone host")
	flag.Parse()

	if *dir == "" || *passwordFile == "" {
		log.Fatal("-dir and -password-file are required")
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		log.Fatalf("-listen %q: %v", *listen, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		log.Fatalf("-listen %q: only loopback addresses are allowed", *listen)
	}
	raw, err := ioutil.ReadFile(*passwordFile)
	if err != nil {
		log.Fatalf("reading the password file: %v", err)
	}
	password := strings.TrimRight(string(raw), "\r\n")
	if password == "" {
		log.Fatal("the password file is empty")
	}

	model := simulator.VPX()
	model.Datacenter = 1
	model.Cluster = 1
	model.ClusterHost = 2
	model.Host = 1
	model.Datastore = 2
	model.Portgroup = 1
	model.Machine = *machines
	model.Autostart = false
	if err := model.Create(); err != nil {
		log.Fatalf("creating the inventory: %v", err)
	}
	defer model.Remove()

	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*username, password)}
	model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{makeCerts(*dir)}, MinVersion: tls.VersionTLS12}
	model.Service.RegisterEndpoints = true
	server := model.Service.NewServer()
	defer server.Close()

	public := *server.URL
	public.User = nil
	env := map[string]interface{}{
		"url":      public.String(),
		"host":     public.Hostname(),
		"port":     public.Port(),
		"username": *username,
		"ca_file":  filepath.Join(*dir, "ca.pem"),
		"pid":      os.Getpid(),
		"machines": *machines,
	}
	data, _ := json.MarshalIndent(env, "", "  ")
	writeFile(filepath.Join(*dir, "env.json"), append(data, '\n'), 0644)
	fmt.Printf("vcsim listening on %s (CA: %s)\n", public.String(), env["ca_file"])

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
	os.Remove(filepath.Join(*dir, "env.json"))
}

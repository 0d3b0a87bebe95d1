package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// decoder decodes manifests strictly: an unknown or duplicate field is an
// error, as `kubectl apply --validate=strict` makes it.
func decoder(t *testing.T) runtime.Decoder {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := appsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
}

// decodeAll decodes every document of a YAML stream.
func decodeAll(t *testing.T, dec runtime.Decoder, data []byte) ([]runtime.Object, error) {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []runtime.Object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, _, err := dec.Decode(doc, nil, nil)
		if err != nil {
			return nil, err
		}
		objs = append(objs, obj)
	}
}

// manifests are the objects of kubernetes/, decoded strictly.
type manifests struct {
	ds      *appsv1.DaemonSet
	svc     *corev1.Service
	secrets map[string]*corev1.Secret
}

func load(t *testing.T) manifests {
	t.Helper()
	dec := decoder(t)
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	m := manifests{secrets: map[string]*corev1.Secret{}}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := decodeAll(t, dec, data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, o := range objs {
			switch o := o.(type) {
			case *appsv1.DaemonSet:
				m.ds = o
			case *corev1.Service:
				m.svc = o
			case *corev1.Secret:
				m.secrets[o.Name] = o
			default:
				t.Errorf("%s: unexpected %T", f, o)
			}
		}
	}
	if m.ds == nil || m.svc == nil {
		t.Fatal("want a DaemonSet and a Service")
	}
	return m
}

// TestStrictDecoding: the decoder used below refuses what kubectl's strict
// validation refuses, so the manifests passing it means something.
func TestStrictDecoding(t *testing.T) {
	dec := decoder(t)
	for name, doc := range map[string]string{
		"unknown field":   "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {clusterIP: None, selectr: {a: b}}\n",
		"duplicate field": "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {clusterIP: None}\nspec: {}\n",
		"wrong type":      "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x}\nspec: {minReadySeconds: soon}\n",
	} {
		if _, err := decodeAll(t, dec, []byte(doc)); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

// TestManifests: the DaemonSet, the headless Service and the Secrets agree
// with each other and with the image, and the pod is as README says: the
// commands run in the pod, unprivileged, with no --name.
func TestManifests(t *testing.T) {
	m := load(t)
	pod := m.ds.Spec.Template
	for k, v := range m.ds.Spec.Selector.MatchLabels {
		if pod.Labels[k] != v {
			t.Errorf("the DaemonSet's selector %s=%s does not match its pods", k, v)
		}
	}
	if m.svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("the Service is not headless (clusterIP %q): dns:/// would see one virtual IP, not the pods", m.svc.Spec.ClusterIP)
	}
	for k, v := range m.svc.Spec.Selector {
		if pod.Labels[k] != v {
			t.Errorf("the Service's selector %s=%s does not match the pods", k, v)
		}
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want rexecd alone", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	if len(m.svc.Spec.Ports) != 1 || len(c.Ports) != 1 || m.svc.Spec.Ports[0].TargetPort.StrVal != c.Ports[0].Name ||
		c.Ports[0].ContainerPort != 50051 || m.svc.Spec.Ports[0].Port != 50051 {
		t.Errorf("Service port %v does not reach container port %v on 50051", m.svc.Spec.Ports, c.Ports)
	}

	// Commands run in the pod: no host namespaces, nothing privileged.
	ps := pod.Spec
	if ps.HostPID || ps.HostNetwork || ps.HostIPC {
		t.Error("the pod shares a host namespace; README says commands run in the pod")
	}
	sc := ps.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil {
		t.Fatal("the pod must run as a non-root user")
	}
	for _, ctr := range append(slices.Clone(ps.InitContainers), c) {
		s := ctr.SecurityContext
		if s == nil || s.Privileged != nil && *s.Privileged || s.AllowPrivilegeEscalation == nil || *s.AllowPrivilegeEscalation ||
			s.Capabilities == nil || !slices.Contains(s.Capabilities.Drop, "ALL") || s.ReadOnlyRootFilesystem == nil || !*s.ReadOnlyRootFilesystem {
			t.Errorf("container %s: want no privilege escalation, all capabilities dropped, a read-only root", ctr.Name)
		}
	}

	// Every mount has its volume; every Secret volume its Secret with the
	// keys the flags read.
	volumes := map[string]corev1.Volume{}
	for _, v := range ps.Volumes {
		volumes[v.Name] = v
	}
	mounts := map[string]string{} // mount path → volume
	for _, ctr := range append(slices.Clone(ps.InitContainers), c) {
		for _, vm := range ctr.VolumeMounts {
			if _, ok := volumes[vm.Name]; !ok {
				t.Errorf("container %s mounts %s, which is no volume", ctr.Name, vm.Name)
			}
			if ctr.Name == c.Name {
				mounts[vm.MountPath] = vm.Name
			}
		}
	}
	for _, v := range ps.Volumes {
		if v.Secret == nil {
			continue
		}
		if _, ok := m.secrets[v.Secret.SecretName]; !ok {
			t.Errorf("volume %s: no Secret %s in secrets.example.yaml", v.Name, v.Secret.SecretName)
		}
		if mode := v.Secret.DefaultMode; mode == nil || *mode&0o007 != 0 {
			t.Errorf("volume %s: others may read the Secret's files", v.Name)
		}
	}
	flags := map[string]string{}
	for _, a := range c.Args {
		k, v, _ := strings.Cut(a, "=")
		flags[k] = v
	}
	if _, ok := flags["--name"]; ok {
		t.Error("--name given: pods that share a name share their tokens")
	}
	if flags["--listen"] != "0.0.0.0:50051" {
		t.Errorf("--listen %q, want 0.0.0.0:50051 (the pod's own IP is then its tokens' authority)", flags["--listen"])
	}
	secretKey := map[string]string{"--tls-cert": "tls.crt", "--tls-key": "tls.key", "--tls-client-ca": "ca.crt"}
	for _, f := range []string{"--keys", "--tls-cert", "--tls-key", "--tls-client-ca"} {
		path := flags[f]
		vol, ok := mounts[filepath.Dir(path)]
		if !ok {
			t.Errorf("%s %s: no volume mounted at %s", f, path, filepath.Dir(path))
			continue
		}
		if v := volumes[vol]; v.Secret != nil {
			if _, ok := m.secrets[v.Secret.SecretName].StringData[filepath.Base(path)]; !ok || secretKey[f] != filepath.Base(path) {
				t.Errorf("%s %s: Secret %s has no %s", f, path, v.Secret.SecretName, filepath.Base(path))
			}
		}
	}
	// The key file comes from the init container's copy (mode 0600, owned
	// by the pod's user), not from the Secret's root-owned files.
	if v := volumes[mounts[filepath.Dir(flags["--keys"])]]; v.EmptyDir == nil {
		t.Errorf("--keys %s is not on the init container's emptyDir", flags["--keys"])
	}
	if _, ok := m.secrets["rexecd-keys"].StringData["keys"]; !ok {
		t.Error("Secret rexecd-keys has no keys")
	}
	// The state directory (the journal, partial uploads) is a volume of its
	// own, which rexecd's restarts in the pod keep.
	if vol, ok := mounts[flags["--state-dir"]]; !ok || flags["--state-dir"] == "" {
		t.Errorf("--state-dir %q: no volume mounted there", flags["--state-dir"])
	} else if volumes[vol].EmptyDir == nil && volumes[vol].HostPath == nil && volumes[vol].PersistentVolumeClaim == nil {
		t.Errorf("--state-dir's volume %s keeps nothing across restarts", vol)
	}

	// The image: its user is the pod's, its default flags the DaemonSet's.
	docker, err := os.ReadFile("docker/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if uid := regexp.MustCompile(`--uid (\d+)`).FindSubmatch(docker); uid == nil || string(uid[1]) != "10001" || *sc.RunAsUser != 10001 {
		t.Errorf("the image's user and the pod's runAsUser (%d) differ", *sc.RunAsUser)
	}
	for _, f := range []string{"--keys", "--tls-cert", "--tls-key", "--tls-client-ca", "--state-dir"} {
		if !bytes.Contains(docker, []byte(`"`+f+`", "`+flags[f]+`"`)) {
			t.Errorf("the Dockerfile's CMD does not give %s %s as the DaemonSet does", f, flags[f])
		}
	}
	if !bytes.Contains(docker, []byte(`VOLUME ["`+flags["--state-dir"]+`"]`)) {
		t.Errorf("the Dockerfile has no VOLUME for --state-dir %s", flags["--state-dir"])
	}
	if !bytes.Contains(docker, []byte("debian:bookworm-slim")) {
		t.Error("the image is not the slim Debian (a shell and coreutils) README names")
	}
}

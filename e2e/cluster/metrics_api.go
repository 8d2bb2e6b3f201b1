package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The resource metrics API (metrics.k8s.io) that the HPA controller reads. KWOK's pods
// use no CPU, so this stands in for metrics-server and reports each running
// container at a steady idle load: idleShare of its requests. An HPA over such pods
// settles at its floor, so a raised floor scales a Deployment up and a lowered one
// lets the real HPA controller scale it back down, as on an idle kind cluster with
// metrics-server.
const idleShare = 0.05

const metricsGroupVersion = "metrics.k8s.io/v1beta1"

// serveMetricsAPI serves the API over TLS on 127.0.0.1:port until ctx ends. The API
// server reaches it through the APIService `seed` registers.
func serveMetricsAPI(ctx context.Context, kubeconfig string, port int, cert, key string) error {
	client, err := clientFor(kubeconfig)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/apis/"+metricsGroupVersion, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{
			"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": metricsGroupVersion,
			"resources": []map[string]any{
				{"name": "pods", "singularName": "", "namespaced": true, "kind": "PodMetrics", "verbs": []string{"get", "list"}},
			},
		})
	})
	mux.HandleFunc("/apis/"+metricsGroupVersion+"/namespaces/", func(w http.ResponseWriter, r *http.Request) {
		// /apis/metrics.k8s.io/v1beta1/namespaces/NS/pods[/NAME]
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/apis/"+metricsGroupVersion+"/namespaces/"), "/")
		if len(parts) < 2 || parts[1] != "pods" {
			http.NotFound(w, r)
			return
		}
		podMetrics(w, r, client, parts[0], parts[2:])
	})
	// The aggregator merges every API's OpenAPI documents into its own; an empty one
	// keeps it from retrying forever.
	mux.HandleFunc("/openapi/v2", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"swagger": "2.0", "info": map[string]any{"title": "metrics", "version": "v1beta1"}, "paths": map[string]any{}})
	})
	mux.HandleFunc("/openapi/v3", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"paths": map[string]any{}})
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
	server := &http.Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = server.Shutdown(shutdown)
	}()
	if err := server.ListenAndServeTLS(cert, key); err != http.ErrServerClosed {
		return err
	}
	return nil
}

func podMetrics(w http.ResponseWriter, r *http.Request, client *kubernetes.Clientset, namespace string, name []string) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	var pods []corev1.Pod
	if len(name) == 1 && name[0] != "" {
		pod, err := client.CoreV1().Pods(namespace).Get(ctx, name[0], metav1.GetOptions{})
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		pods = append(pods, *pod)
	} else {
		list, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: r.URL.Query().Get("labelSelector")})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		pods = list.Items
	}
	now := time.Now().UTC().Format(time.RFC3339)
	items := []map[string]any{}
	for _, pod := range pods {
		if pod.Status.Phase != corev1.PodRunning {
			continue
		}
		containers := []map[string]any{}
		for _, c := range pod.Spec.Containers {
			containers = append(containers, map[string]any{
				"name": c.Name,
				"usage": map[string]string{
					"cpu":    idleCPU(c.Resources.Requests.Cpu()),
					"memory": idleMemory(c.Resources.Requests.Memory()),
				},
			})
		}
		items = append(items, map[string]any{
			"metadata":   map[string]any{"name": pod.Name, "namespace": pod.Namespace, "labels": pod.Labels, "creationTimestamp": now},
			"timestamp":  now,
			"window":     "30s",
			"containers": containers,
		})
	}
	if len(name) == 1 && name[0] != "" {
		if len(items) == 0 {
			http.Error(w, "pod is not running", http.StatusNotFound)
			return
		}
		item := items[0]
		item["kind"], item["apiVersion"] = "PodMetrics", metricsGroupVersion
		writeJSON(w, item)
		return
	}
	writeJSON(w, map[string]any{"kind": "PodMetricsList", "apiVersion": metricsGroupVersion, "metadata": map[string]any{}, "items": items})
}

// idleCPU is idleShare of a CPU request, at least 1m.
func idleCPU(request *resource.Quantity) string {
	return resource.NewMilliQuantity(max(1, int64(float64(request.MilliValue())*idleShare)), resource.DecimalSI).String()
}

// idleMemory is idleShare of a memory request, at least 1Mi.
func idleMemory(request *resource.Quantity) string {
	return resource.NewQuantity(max(1<<20, int64(float64(request.Value())*idleShare)), resource.BinarySI).String()
}

func writeJSON(w http.ResponseWriter, body any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(body); err != nil {
		log.Printf("write response: %v", err)
	}
}

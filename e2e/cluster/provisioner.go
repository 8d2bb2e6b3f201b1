package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// runProvisioner creates a hostPath volume for every claim of the default
// StorageClass, with the access modes and size the claim asks for (ReadWriteMany
// included: KWOK mounts nothing), and deletes a released volume with its directory.
// The controller manager's PersistentVolume controller does the binding, as it does
// for any external provisioner.
func runProvisioner(ctx context.Context, kubeconfig, volumes string) error {
	client, err := clientFor(kubeconfig)
	if err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(client, 30*time.Second)
	claims := factory.Core().V1().PersistentVolumeClaims().Informer()
	pvs := factory.Core().V1().PersistentVolumes().Informer()
	_, err = claims.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { provisionClaim(ctx, client, volumes, obj) },
		UpdateFunc: func(_, obj any) { provisionClaim(ctx, client, volumes, obj) },
	})
	if err != nil {
		return err
	}
	_, err = pvs.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { deleteReleased(ctx, client, volumes, obj) },
		UpdateFunc: func(_, obj any) { deleteReleased(ctx, client, volumes, obj) },
	})
	if err != nil {
		return err
	}
	factory.Start(ctx.Done())
	<-ctx.Done()
	factory.Shutdown()
	return nil
}

func provisionClaim(ctx context.Context, client *kubernetes.Clientset, volumes string, obj any) {
	claim, ok := obj.(*corev1.PersistentVolumeClaim)
	if !ok || claim.Spec.VolumeName != "" || claim.DeletionTimestamp != nil ||
		claim.Annotations["volume.kubernetes.io/storage-provisioner"] != provisionerName {
		return
	}
	name := "pvc-" + string(claim.UID)
	path := filepath.Join(volumes, name)
	// Any pod's user may write, as on local-path volumes: the kubelet applies no
	// fsGroup to a hostPath volume. Chmod, because MkdirAll's mode passes the umask.
	err := os.MkdirAll(path, 0o777)
	if err == nil {
		err = os.Chmod(path, 0o777)
	}
	if err != nil {
		log.Printf("claim %s/%s: %v", claim.Namespace, claim.Name, err)
		return
	}
	class := ""
	if claim.Spec.StorageClassName != nil {
		class = *claim.Spec.StorageClassName
	}
	hostPath := corev1.HostPathDirectoryOrCreate
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{"pv.kubernetes.io/provisioned-by": provisionerName},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: claim.Spec.Resources.Requests[corev1.ResourceStorage]},
			AccessModes:                   claim.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			StorageClassName:              class,
			VolumeMode:                    claim.Spec.VolumeMode,
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: claim.Namespace, Name: claim.Name, UID: claim.UID,
			},
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: path, Type: &hostPath},
			},
		},
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
	switch {
	case err == nil:
		log.Printf("provisioned %s for %s/%s", name, claim.Namespace, claim.Name)
	case !apierrors.IsAlreadyExists(err):
		log.Printf("claim %s/%s: %v", claim.Namespace, claim.Name, err)
	}
}

func deleteReleased(ctx context.Context, client *kubernetes.Clientset, volumes string, obj any) {
	pv, ok := obj.(*corev1.PersistentVolume)
	if !ok || pv.Annotations["pv.kubernetes.io/provisioned-by"] != provisionerName ||
		pv.Status.Phase != corev1.VolumeReleased ||
		pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := client.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		log.Printf("delete released volume %s: %v", pv.Name, err)
		return
	}
	if err := os.RemoveAll(filepath.Join(volumes, pv.Name)); err != nil {
		log.Printf("remove %s: %v", pv.Name, fmt.Errorf("volume directory: %w", err))
	}
}

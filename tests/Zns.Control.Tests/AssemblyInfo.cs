// Every target registers a meter named "Zns" and every endpoint's exporter listens to all of them, so targets of
// concurrent tests would see each other's instruments; the tests run one at a time.
[assembly: CollectionBehavior(CollectionBehavior.CollectionPerAssembly)]
